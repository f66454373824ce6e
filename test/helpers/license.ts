/**
 * The real licence server (license-server/) on loopback, behind a TCP proxy so a test can take
 * it away and bring it back on the same address, with a key pair made for the test.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { buildLicenseServer } from '../../license-server/src/server.js'
import { openKeyStore, type KeyStore } from '../../license-server/src/key-store.js'
import { generateLicenseKey } from '../../license-server/src/keys.js'
import { createTcpProxy, type TcpProxy } from './tcp-proxy.js'
import { createTestDataDir } from './database.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const DAY_MS = 86_400_000
/** The install's domain in these tests: the host of CAT_PUBLIC_URL. */
export const DOMAIN = 'presence.example.com'

export interface TestLicenseServer {
  /** CAT_LICENSE_SERVER_URL: the proxy's address. */
  url: string
  /** CAT_LICENSE_PUBLIC_KEY: base64 of the SPKI DER. */
  publicKey: string
  privateKey: KeyObject
  store: KeyStore
  /** The key store's file, for the admin command. */
  dbFile: string
  proxy: TcpProxy
  /** A new key bound to `domains`, valid `days` from the clock's now. */
  issue(options?: { domains?: string[]; days?: number }): string
  /** The service's environment for licensing on with this server. */
  env(extra?: Record<string, string>): Record<string, string>
}

export function createKeyPair(): { privateKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') }
}

/** Starts a licence server on 127.0.0.1 with its own key store (or `dbFile`) and key pair (or `privateKey`). */
export async function startLicenseServer(t: Teardown, options: { now: () => number; privateKey?: KeyObject; dbFile?: string }): Promise<TestLicenseServer> {
  const pair = options.privateKey === undefined ? createKeyPair() : { privateKey: options.privateKey, publicKey: '' }
  const dbFile = options.dbFile ?? join(createTestDataDir(t, 'license-server'), 'keys.db')
  const store = openKeyStore(dbFile)
  const app = buildLicenseServer({ store, privateKey: pair.privateKey, now: options.now })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const proxy = await createTcpProxy((app.server.address() as AddressInfo).port)
  t.teardown(async () => {
    await proxy.close()
    await app.close()
    store.close()
  })
  const url = `http://127.0.0.1:${proxy.port}`
  return {
    url,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    store,
    dbFile,
    proxy,
    issue({ domains = [DOMAIN], days = 365 } = {}) {
      const key = generateLicenseKey()
      const now = options.now()
      store.issue({ key, createdAt: now, validUntil: now + days * DAY_MS, note: 'test', domains })
      return key
    },
    env(extra = {}) {
      return { CAT_LICENSE_SERVER_URL: url, CAT_PUBLIC_URL: `https://${DOMAIN}`, CAT_LICENSE_PUBLIC_KEY: pair.publicKey, ...extra }
    },
  }
}
