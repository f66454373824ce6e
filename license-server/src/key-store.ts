import Database from 'better-sqlite3'

/** A licence key as the vendor issued it. Times are ms since the epoch. */
export interface KeyRow {
  key: string
  createdAt: number
  validUntil: number
  revokedAt: number | null
  note: string
  domains: string[]
}

export interface ActivationRow {
  key: string
  domain: string
  instanceId: string
  firstSeen: number
  lastSeen: number
  lastStatus: string
}

export interface KeyStore {
  issue(row: { key: string; createdAt: number; validUntil: number; note: string; domains: readonly string[] }): void
  /** True when the key existed and was not revoked yet. */
  revoke(key: string, at: number): boolean
  /** Moves the end of the key's term; false when there is no such key. */
  extend(key: string, validUntil: number): boolean
  find(key: string): KeyRow | undefined
  list(): KeyRow[]
  /** Records that `instanceId` of `domain` asked about `key`, with the answer's status. */
  recordActivation(key: string, domain: string, instanceId: string, status: string, at: number): void
  activations(key: string): ActivationRow[]
  close(): void
}

/**
 * The licence server's own tables, in one SQLite file (WAL, so the admin command can write
 * while the server reads): the keys, the domains each key is bound to, and the activations
 * seen (key, domain, instance).
 */
export function openKeyStore(file: string): KeyStore {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('busy_timeout = 5000')
  db.pragma('foreign_keys = ON')
  db.exec(`
    CREATE TABLE IF NOT EXISTS license_keys (
      key TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL,
      valid_until INTEGER NOT NULL,
      revoked_at INTEGER,
      note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE IF NOT EXISTS license_domains (
      key TEXT NOT NULL REFERENCES license_keys(key) ON DELETE CASCADE,
      domain TEXT NOT NULL,
      PRIMARY KEY (key, domain)
    );
    CREATE TABLE IF NOT EXISTS license_activations (
      key TEXT NOT NULL REFERENCES license_keys(key) ON DELETE CASCADE,
      domain TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      first_seen INTEGER NOT NULL,
      last_seen INTEGER NOT NULL,
      last_status TEXT NOT NULL,
      PRIMARY KEY (key, domain, instance_id)
    );
  `)
  const insertKey = db.prepare('INSERT INTO license_keys (key, created_at, valid_until, note) VALUES (?, ?, ?, ?)')
  const insertDomain = db.prepare('INSERT OR IGNORE INTO license_domains (key, domain) VALUES (?, ?)')
  const selectKey = db.prepare<[string], { key: string; created_at: number; valid_until: number; revoked_at: number | null; note: string }>('SELECT * FROM license_keys WHERE key = ?')
  const selectKeys = db.prepare<[], { key: string; created_at: number; valid_until: number; revoked_at: number | null; note: string }>('SELECT * FROM license_keys ORDER BY created_at, key')
  const selectDomains = db.prepare<[string], { domain: string }>('SELECT domain FROM license_domains WHERE key = ? ORDER BY domain')
  const upsertActivation = db.prepare(`INSERT INTO license_activations (key, domain, instance_id, first_seen, last_seen, last_status) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (key, domain, instance_id) DO UPDATE SET last_seen = excluded.last_seen, last_status = excluded.last_status`)
  const selectActivations = db.prepare<[string], { key: string; domain: string; instance_id: string; first_seen: number; last_seen: number; last_status: string }>('SELECT * FROM license_activations WHERE key = ? ORDER BY domain, instance_id')
  const toRow = (row: { key: string; created_at: number; valid_until: number; revoked_at: number | null; note: string }): KeyRow => ({
    key: row.key,
    createdAt: row.created_at,
    validUntil: row.valid_until,
    revokedAt: row.revoked_at,
    note: row.note,
    domains: selectDomains.all(row.key).map((d) => d.domain),
  })
  const issue = db.transaction((row: { key: string; createdAt: number; validUntil: number; note: string; domains: readonly string[] }) => {
    insertKey.run(row.key, row.createdAt, row.validUntil, row.note)
    for (const domain of row.domains) insertDomain.run(row.key, domain)
  })
  return {
    issue: (row) => issue(row),
    revoke: (key, at) => db.prepare('UPDATE license_keys SET revoked_at = ? WHERE key = ? AND revoked_at IS NULL').run(at, key).changes === 1,
    extend: (key, validUntil) => db.prepare('UPDATE license_keys SET valid_until = ? WHERE key = ?').run(validUntil, key).changes === 1,
    find(key) {
      const row = selectKey.get(key)
      return row === undefined ? undefined : toRow(row)
    },
    list: () => selectKeys.all().map(toRow),
    recordActivation(key, domain, instanceId, status, at) {
      upsertActivation.run(key, domain, instanceId, at, at, status)
    },
    activations: (key) => selectActivations.all(key).map((row) => ({ key: row.key, domain: row.domain, instanceId: row.instance_id, firstSeen: row.first_seen, lastSeen: row.last_seen, lastStatus: row.last_status })),
    close: () => db.close(),
  }
}
