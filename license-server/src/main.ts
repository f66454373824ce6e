/**
 * The licence server as a process. Environment:
 * LICENSE_SERVER_PRIVATE_KEY (required: the vendor's Ed25519 private key, PEM or the base64 of its PKCS#8 DER),
 * LICENSE_SERVER_DB (the SQLite file, default ./license-server.db), PORT (default 4000), HOST (default 127.0.0.1).
 */
import { buildLicenseServer } from './server.js'
import { openKeyStore } from './key-store.js'
import { parsePrivateKey, publicKeyOf } from './keys.js'

const raw = process.env.LICENSE_SERVER_PRIVATE_KEY?.trim()
if (raw === undefined || raw === '') {
  process.stderr.write('LICENSE_SERVER_PRIVATE_KEY: required (run `npm run license-admin -- keygen` for a key pair)\n')
  process.exit(1)
}
let privateKey
try {
  privateKey = parsePrivateKey(raw)
} catch (error) {
  process.stderr.write(`LICENSE_SERVER_PRIVATE_KEY: ${(error as Error).message.split('\n')[0]}\n`)
  process.exit(1)
}
const port = Number(process.env.PORT ?? 4000)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`PORT: expected a TCP port, 0-65535, got ${JSON.stringify(process.env.PORT)}\n`)
  process.exit(1)
}
const store = openKeyStore(process.env.LICENSE_SERVER_DB ?? 'license-server.db')
const app = buildLicenseServer({ store, privateKey, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
app.addHook('onClose', async () => store.close())
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
app.log.info({ publicKey: publicKeyOf(privateKey) }, 'licence server: leases are signed with this key pair (CAT_LICENSE_PUBLIC_KEY is the public key)')
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0))
  })
}
