#!/usr/bin/env node
/**
 * The licence server's admin command (docs/licensing.md, "Running the licence server").
 * The key store is LICENSE_SERVER_DB (default ./license-server.db) or --db; the server may run meanwhile.
 */
import { parseArgs } from 'node:util'
import { openKeyStore, type KeyStore } from './key-store.js'
import { generateLicenseKey, generateSigningKeys } from './keys.js'
import { DOMAIN_PATTERN, LICENSE_KEY_PATTERN } from '../../src/license/lease.js'

const USAGE = `usage: license-admin <command> [options]

  keygen                                   a new Ed25519 key pair: the private key for the licence server
                                           (LICENSE_SERVER_PRIVATE_KEY), the public one for the service (CAT_LICENSE_PUBLIC_KEY)
  issue --domain D [--domain D2 …] [--valid-days N] [--key K] [--note TEXT]
                                           a new key bound to the domains, valid N days (default 365); prints the key
  revoke KEY                               the key is revoked: every install using it turns invalid at its next validation
  renew KEY --valid-days N                 the key's term ends N days from now (a revoked key stays revoked)
  list [--json]                            every key: its term, its state, its domains and the instances seen

  --db FILE                                the key store (default: LICENSE_SERVER_DB, else ./license-server.db)`

const DAY_MS = 86_400_000

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`)
  process.exit(2)
}

function days(raw: string | undefined, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback
  if (raw === undefined || !/^\d{1,5}$/.test(raw) || Number(raw) < 1) fail(`--valid-days: expected a whole number of days, 1-99999, got ${JSON.stringify(raw)}`)
  return Number(raw)
}

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ')

export function run(argv: string[], env: NodeJS.ProcessEnv, now = Date.now()): string {
  const [command, ...rest] = argv
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        db: { type: 'string' },
        domain: { type: 'string', multiple: true },
        'valid-days': { type: 'string' },
        key: { type: 'string' },
        note: { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
    })
  } catch (error) {
    fail((error as Error).message)
  }
  const { values, positionals } = parsed
  if (command === 'keygen') {
    const keys = generateSigningKeys()
    return [
      `LICENSE_SERVER_PRIVATE_KEY=${keys.privateKey}`,
      `CAT_LICENSE_PUBLIC_KEY=${keys.publicKey}`,
      '',
      'Keep the private key secret: it goes to the licence server only. The public key is built into',
      "the service's distribution (or its environment).",
    ].join('\n')
  }
  const file = values.db ?? env.LICENSE_SERVER_DB ?? 'license-server.db'
  let opened: KeyStore | undefined
  // Opened at first use, so a command refused for its arguments leaves no file behind.
  const store = (): KeyStore => (opened ??= openKeyStore(file))
  try {
    switch (command) {
      case 'issue': {
        const domains = (values.domain ?? []).map((d) => d.trim().toLowerCase())
        if (domains.length === 0) fail('issue: --domain is required (the host of the install\'s CAT_PUBLIC_URL, e.g. presence.example.com)')
        for (const domain of domains) if (!DOMAIN_PATTERN.test(domain)) fail(`--domain: expected a host name such as presence.example.com, got ${JSON.stringify(domain)}`)
        const key = values.key ?? generateLicenseKey()
        if (!LICENSE_KEY_PATTERN.test(key)) fail('--key: expected 8-128 characters of A-Z a-z 0-9 _ -')
        const validUntil = now + days(values['valid-days'], 365) * DAY_MS
        if (store().find(key) !== undefined) fail('--key: that key exists already')
        store().issue({ key, createdAt: now, validUntil, note: values.note ?? '', domains })
        return key
      }
      case 'revoke': {
        const key = positionals[0]
        if (key === undefined) fail('revoke: which key?')
        if (store().find(key) === undefined) fail('revoke: no such key')
        if (!store().revoke(key, now)) return `${key} was revoked already`
        return `${key} revoked`
      }
      case 'renew': {
        const key = positionals[0]
        if (key === undefined) fail('renew: which key?')
        const validUntil = now + days(values['valid-days']) * DAY_MS
        if (!store().extend(key, validUntil)) fail('renew: no such key')
        return `${key} valid until ${iso(validUntil)} UTC`
      }
      case 'list': {
        const rows = store().list().map((row) => ({
          ...row,
          state: row.revokedAt !== null ? 'revoked' : now >= row.validUntil ? 'expired' : 'active',
          activations: store().activations(row.key),
        }))
        if (values.json === true) return JSON.stringify(rows, null, 2)
        if (rows.length === 0) return 'no keys'
        return rows.map((row) => {
          const seen = row.activations.map((a) => `${a.domain}/${a.instanceId} ${a.lastStatus} ${iso(a.lastSeen)}`).join(', ')
          return `${row.key}  ${row.state.padEnd(7)}  until ${iso(row.validUntil)}  ${row.domains.join(',')}${row.note === '' ? '' : `  "${row.note}"`}${seen === '' ? '' : `\n    seen: ${seen}`}`
        }).join('\n')
      }
      default:
        return fail(command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`)
    }
  } finally {
    opened?.close()
  }
}

process.stdout.write(`${run(process.argv.slice(2), process.env)}\n`)
