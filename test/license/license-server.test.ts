/**
 * The licence server (license-server/) and its admin command as a vendor uses them: keygen,
 * issue, list, revoke, renew against the key store file, and the signed answers of
 * POST /v1/activate for each case, checked with the public key printed by keygen.
 */
import t from 'tap'
import { createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { request } from 'undici'
import { runTs } from '../helpers/run-ts.js'
import { createTestDataDir } from '../helpers/database.js'
import { startLicenseServer, DOMAIN } from '../helpers/license.js'
import { parsePrivateKey } from '../../license-server/src/keys.js'
import { canonicalLease, signLease, verifyLease, type Lease } from '../../src/license/lease.js'
import { loadConfig } from '../../src/config/config.js'

const CLI = 'license-server/src/cli.ts'
const env = (db: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, LICENSE_SERVER_DB: db })

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${url}/v1/activate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

t.test('the lease: canonical bytes, signed with Ed25519; one byte changed or another key fails', async (t) => {
  const keys = await runTs(CLI, ['keygen'], env(''))
  const privateKey = parsePrivateKey(/LICENSE_SERVER_PRIVATE_KEY=(\S+)/.exec(keys.stdout)?.[1] ?? '')
  const publicKey = loadConfig({ CAT_LICENSE_SERVER_URL: 'https://l.example', CAT_PUBLIC_URL: 'https://p.example', CAT_LICENSE_PUBLIC_KEY: /CAT_LICENSE_PUBLIC_KEY=(\S+)/.exec(keys.stdout)?.[1] }).license?.publicKey
  if (publicKey === undefined) throw new Error('no public key')
  const lease: Lease = { v: 1, key: 'CAT-ABCDE-FGHJK', domain: 'p.example', status: 'active', validUntil: 1_900_000_000_000, issuedAt: 1_800_000_000_000 }
  t.equal(canonicalLease(lease), '{"v":1,"key":"CAT-ABCDE-FGHJK","domain":"p.example","status":"active","validUntil":1900000000000,"issuedAt":1800000000000}')
  const signed = signLease(privateKey, lease)
  t.same(verifyLease(publicKey, signed), lease)
  for (let i = 0; i < signed.lease.length; i += 7) {
    const bytes = Buffer.from(signed.lease)
    bytes[i] = bytes[i]! ^ 1
    t.equal(verifyLease(publicKey, { ...signed, lease: bytes.toString('latin1') }), undefined, `byte ${i} changed`)
  }
  t.equal(verifyLease(publicKey, { lease: ` ${signed.lease}`, signature: signed.signature }), undefined)
  t.equal(verifyLease(publicKey, { lease: signed.lease, signature: signed.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }), undefined, 'signature altered')
  const other = createPublicKey(parsePrivateKey((await runTs(CLI, ['keygen'], env(''))).stdout.split('\n')[0]!.split('=').slice(1).join('=')))
  t.equal(verifyLease(other, signed), undefined, "another vendor's key")
})

t.test('the admin command issues, lists, revokes and renews keys the running server answers for', async (t) => {
  const dir = createTestDataDir(t, 'license-cli')
  const db = join(dir, 'keys.db')
  const server = await startLicenseServer(t, { now: Date.now, dbFile: db })
  const publicKey = createPublicKey({ key: Buffer.from(server.publicKey, 'base64'), format: 'der', type: 'spki' })

  const issued = await runTs(CLI, ['issue', '--domain', 'Presence.Example.com', '--domain', 'staging.example.com', '--valid-days', '30', '--note', 'Acme'], env(db))
  t.equal(issued.code, 0, issued.stderr)
  const key = issued.stdout.trim()
  t.match(key, /^CAT-[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$/, 'a key to send to the customer')

  const answer = await post(server.url, { key, domain: DOMAIN, instanceId: 'i-1' })
  t.equal(answer.status, 200)
  const lease = verifyLease(publicKey, answer.body as { lease: string; signature: string })
  t.match(lease, { key, domain: DOMAIN, status: 'active' }, 'an active lease, signed')
  t.ok(lease !== undefined && Math.abs(lease.validUntil - (Date.now() + 30 * 86_400_000)) < 60_000, 'valid 30 days')
  t.match(verifyLease(publicKey, (await post(server.url, { key, domain: 'staging.example.com', instanceId: 'i-2' })).body as never), { status: 'active' }, 'bound to both domains')
  const mismatch = await post(server.url, { key, domain: 'evil.example.net', instanceId: 'i-3' })
  t.equal(mismatch.status, 200)
  t.match(verifyLease(publicKey, mismatch.body as never), { status: 'domain_mismatch', domain: 'evil.example.net' }, 'another domain: a signed domain_mismatch')

  const listed = await runTs(CLI, ['list'], env(db))
  t.equal(listed.code, 0)
  t.match(listed.stdout, new RegExp(`${key}  active .*presence.example.com,staging.example.com  "Acme"`))
  t.match(listed.stdout, /seen: .*presence.example.com\/i-1 active/, 'the activations seen')
  const json = JSON.parse((await runTs(CLI, ['list', '--json'], env(db))).stdout) as { key: string; state: string; activations: unknown[] }[]
  t.match(json, [{ key, state: 'active', domains: ['presence.example.com', 'staging.example.com'] }])
  t.equal(json[0]?.activations.length, 3)

  const revoked = await runTs(CLI, ['revoke', key], env(db))
  t.equal(revoked.stdout.trim(), `${key} revoked`)
  t.match(verifyLease(publicKey, (await post(server.url, { key, domain: DOMAIN, instanceId: 'i-1' })).body as never), { status: 'revoked' })
  t.match((await runTs(CLI, ['list'], env(db))).stdout, `${key}  revoked`)
  t.equal((await runTs(CLI, ['revoke', key], env(db))).stdout.trim(), `${key} was revoked already`)

  const short = await runTs(CLI, ['issue', '--domain', DOMAIN, '--valid-days', '1', '--key', 'CUSTOM-KEY-0001'], env(db))
  t.equal(short.stdout.trim(), 'CUSTOM-KEY-0001', 'a key of the vendor\'s choosing')
  t.match((await runTs(CLI, ['renew', 'CUSTOM-KEY-0001', '--valid-days', '400'], env(db))).stdout, /^CUSTOM-KEY-0001 valid until \d{4}-/)
  const renewed = verifyLease(publicKey, (await post(server.url, { key: 'CUSTOM-KEY-0001', domain: DOMAIN, instanceId: 'i-9' })).body as never)
  t.ok(renewed !== undefined && renewed.validUntil > Date.now() + 399 * 86_400_000, 'renewed for 400 days')
})

t.test('the admin command refuses bad arguments with a line and exit code 2, leaving no file behind', async (t) => {
  const dir = createTestDataDir(t, 'license-cli-bad')
  const db = join(dir, 'keys.db')
  for (const [args, message] of [
    [['issue'], /--domain is required/],
    [['issue', '--domain', 'not a domain'], /--domain: expected a host name/],
    [['issue', '--domain', DOMAIN, '--valid-days', 'soon'], /--valid-days: expected a whole number/],
    [['issue', '--domain', DOMAIN, '--key', 'bad key!'], /--key: expected 8-128/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['list', '--bogus'], /Unknown option '--bogus'/],
  ] as const) {
    const res = await runTs(CLI, [...args], env(db))
    t.equal(res.code, 2, args.join(' '))
    t.match(res.stderr, message)
    t.match(res.stderr, /usage: license-admin/)
  }
  t.notOk(existsSync(db), 'no key store created')
  await runTs(CLI, ['issue', '--domain', DOMAIN], env(db))
  const missing = await runTs(CLI, ['revoke', 'CAT-NOTAK-EY000'], env(db))
  t.equal(missing.code, 2)
  t.match(missing.stderr, /no such key/)
})

t.test('POST /v1/activate: an unknown key is a signed 404 unknown_key; a bad request a 400 with the error shape', async (t) => {
  const server = await startLicenseServer(t, { now: Date.now })
  const publicKey = createPublicKey({ key: Buffer.from(server.publicKey, 'base64'), format: 'der', type: 'spki' })
  const unknown = await post(server.url, { key: 'CAT-UNKNO-WNKEY', domain: DOMAIN, instanceId: 'i-1' })
  t.equal(unknown.status, 404)
  t.match(unknown.body, { error: { code: 'unknown_key', message: 'This licence key is not known to this licence server.' } })
  t.match(verifyLease(publicKey, unknown.body as never), { status: 'unknown', key: 'CAT-UNKNO-WNKEY', validUntil: 0 })
  for (const body of [{}, { key: 'x', domain: DOMAIN, instanceId: 'i' }, { key: 'CAT-ABCDE-FGHJK', domain: 'a b', instanceId: 'i' }, { key: 'CAT-ABCDE-FGHJK', domain: DOMAIN, instanceId: '' }]) {
    const res = await post(server.url, body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.match(res.body, { error: { code: 'invalid_request', message: String } })
  }
  const large = await post(server.url, { key: 'CAT-ABCDE-FGHJK', domain: 'd'.repeat(5000), instanceId: 'i' })
  t.equal(large.status, 413, 'a body over 4 KiB: 413')
  t.match(large.body, { error: { code: 'too_large', message: String } })
  const res = await request(`${server.url}/v1/other`)
  t.equal(res.statusCode, 404)
  t.match(await res.body.json(), { error: { code: 'not_found' } })
})

t.test('the server as a process: started from its environment, it refuses to start without a key', async (t) => {
  const res = await runTs('license-server/src/main.ts', [], { PATH: process.env.PATH, HOME: process.env.HOME })
  t.equal(res.code, 1)
  t.match(res.stderr, /^LICENSE_SERVER_PRIVATE_KEY: required/)
  const bad = await runTs('license-server/src/main.ts', [], { PATH: process.env.PATH, HOME: process.env.HOME, LICENSE_SERVER_PRIVATE_KEY: 'bm90IGEga2V5' })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^LICENSE_SERVER_PRIVATE_KEY: /)
})
