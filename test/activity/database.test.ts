import type { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eq } from 'drizzle-orm'
import type { RowDataPacket } from 'mysql2/promise'
import t from 'tap'
import { findProjectRoot, MIGRATION_LOCK_SQL, migrateDatabase, migrationsFolder, openDatabase, sqliteFilePath, type Database } from '../../src/activity/database.js'
import * as mysqlTables from '../../src/activity/schema-mysql.js'
import * as sqliteTables from '../../src/activity/schema-sqlite.js'
import { runTs, type RunResult } from '../helpers/run-ts.js'
import { createTestDataDir, createTestMysqlDatabase, mysqlUrlFor, openTestDatabases } from '../helpers/database.js'
import { createSqlActivityStore } from '../../src/activity/sql-activity-store.js'
import type { ActivityStore } from '../../src/activity/activity-store.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Every table with its columns in order, identical in both dialects. */
const EXPECTED_COLUMNS: Record<string, string[]> = {
  cat_consents: ['id', 'contact_id', 'client_id', 'decision', 'version', 'locale', 'at', 'ip', 'user_agent'],
  cat_contacts: ['contact_id', 'client_id', 'open_session_id', 'last_event_id'],
  cat_erasures: ['contact_id', 'erased_at'],
  cat_events: ['id', 'contact_id', 'client_id', 'sid', 'type', 'path', 'title', 'at', 'from_at', 'name', 'company', 'reason'],
  cat_install_state: ['name', 'value', 'updated_at'],
  cat_online_samples: ['t', 'online'],
  cat_page_visits: ['id', 'session_id', 'contact_id', 'sid', 'path', 'title', 'started_at', 'ended_at', 'visible_ms', 'visible_since'],
  cat_sessions: ['id', 'contact_id', 'client_id', 'name', 'company', 'started_at', 'ended_at', 'visible_ms', 'visible_since', 'end_reason', 'pages_count', 'last_event_at', 'last_event_id', 'fold_state'],
}

/** Secondary indexes (not the primary keys) by name, with their columns in order. */
const EXPECTED_INDEXES: Record<string, string[]> = {
  cat_consents_contact_idx: ['contact_id', 'at'],
  cat_events_at_idx: ['at'],
  cat_events_contact_idx: ['contact_id', 'id'],
  cat_page_visits_contact_idx: ['contact_id'],
  cat_page_visits_session_idx: ['session_id', 'started_at'],
  cat_sessions_client_idx: ['client_id', 'started_at'],
  cat_sessions_contact_idx: ['contact_id', 'started_at'],
  cat_sessions_started_idx: ['started_at'],
}

interface Layout {
  columns: Record<string, string[]>
  indexes: Record<string, string[]>
  primaryKeys: Record<string, string[]>
  migrations: number
}

/** What the database holds, read from its own catalog, never from the drizzle schema. */
async function layout(database: Database): Promise<Layout> {
  const columns: Record<string, string[]> = {}
  const indexes: Record<string, string[]> = {}
  const primaryKeys: Record<string, string[]> = {}
  if (database.dialect === 'mysql') {
    const [cols] = await database.pool.query<RowDataPacket[]>(
      "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cat\\_%' ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    for (const row of cols) (columns[row.t as string] ??= []).push(row.c as string)
    const [stats] = await database.pool.query<RowDataPacket[]>(
      "SELECT TABLE_NAME AS t, INDEX_NAME AS i, COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cat\\_%' ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
    )
    for (const row of stats) {
      if (row.i === 'PRIMARY') (primaryKeys[row.t as string] ??= []).push(row.c as string)
      else (indexes[row.i as string] ??= []).push(row.c as string)
    }
    const [[count]] = await database.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM __drizzle_migrations')
    return { columns, indexes, primaryKeys, migrations: Number(count?.n) }
  }
  const sqlite = database.sqlite
  const tables = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cat\\_%' ESCAPE '\\' ORDER BY name").all() as { name: string }[]
  for (const { name } of tables) {
    const info = sqlite.prepare(`PRAGMA table_info(${name})`).all() as { name: string; pk: number }[]
    columns[name] = info.map((c) => c.name)
    primaryKeys[name] = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
  }
  const indexRows = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as { name: string }[]
  for (const { name } of indexRows) indexes[name] = (sqlite.prepare(`PRAGMA index_info(${name})`).all() as { name: string }[]).map((c) => c.name)
  const count = sqlite.prepare('SELECT COUNT(*) AS n FROM __drizzle_migrations').get() as { n: number }
  return { columns, indexes, primaryKeys, migrations: count.n }
}

const EXPECTED_PRIMARY_KEYS = {
  cat_consents: ['id'],
  cat_contacts: ['contact_id'],
  cat_erasures: ['contact_id'],
  cat_events: ['id'],
  cat_install_state: ['name'],
  cat_online_samples: ['t'],
  cat_page_visits: ['id'],
  cat_sessions: ['id'],
}

/** What keeps the process alive, by kind: sockets, timers, file handles. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** Sockets finish closing on the next turns of the loop: waits (without a timer) until the handles match. */
async function settledResources(expected: Record<string, number>): Promise<Record<string, number>> {
  for (let i = 0; i < 100 && JSON.stringify(resources()) !== JSON.stringify(expected); i += 1) await new Promise((resolve) => setImmediate(resolve))
  return resources()
}

const AT = 1_800_000_000_123

const event = (id: string, contactId = 'contact-1') => ({
  id,
  contactId,
  clientId: 'client-1',
  sid: 'tab-1',
  type: 'nav',
  path: '/clients/invoices?x=' + 'p'.repeat(1900),
  title: 'Invoices 🧾 – Ünïcödé',
  at: AT,
})

async function insertAndRead(database: Database) {
  if (database.dialect === 'mysql') {
    const { db } = database
    await db.insert(mysqlTables.events).values([event('01HZXAMPLEab'), event('01HZXAMPLEAB', 'Contact-1'), { ...event('01HZXAMPLEgap'), type: 'gap', fromAt: AT - 60_000, reason: 'timeout' }])
    await db.insert(mysqlTables.sessions).values({ id: '01HZXAMPLEab', contactId: 'contact-1', clientId: 'client-1', startedAt: AT, lastEventAt: AT, visibleMs: Number.MAX_SAFE_INTEGER })
    const rows = await db.select().from(mysqlTables.events).where(eq(mysqlTables.events.id, '01HZXAMPLEab'))
    const gap = await db.select().from(mysqlTables.events).where(eq(mysqlTables.events.id, '01HZXAMPLEgap'))
    const byContact = await db.select({ id: mysqlTables.events.id }).from(mysqlTables.events).where(eq(mysqlTables.events.contactId, 'contact-1'))
    const [session] = await db.select().from(mysqlTables.sessions)
    return { rows, gap, byContact, session }
  }
  const { db } = database
  await db.insert(sqliteTables.events).values([event('01HZXAMPLEab'), event('01HZXAMPLEAB', 'Contact-1'), { ...event('01HZXAMPLEgap'), type: 'gap', fromAt: AT - 60_000, reason: 'timeout' }])
  await db.insert(sqliteTables.sessions).values({ id: '01HZXAMPLEab', contactId: 'contact-1', clientId: 'client-1', startedAt: AT, lastEventAt: AT, visibleMs: Number.MAX_SAFE_INTEGER })
  const rows = await db.select().from(sqliteTables.events).where(eq(sqliteTables.events.id, '01HZXAMPLEab'))
  const gap = await db.select().from(sqliteTables.events).where(eq(sqliteTables.events.id, '01HZXAMPLEgap'))
  const byContact = await db.select({ id: sqliteTables.events.id }).from(sqliteTables.events).where(eq(sqliteTables.events.contactId, 'contact-1'))
  const [session] = await db.select().from(sqliteTables.sessions)
  return { rows, gap, byContact, session }
}

t.test('each dialect', async (t) => {
  const targets = await openTestDatabases(t, 'db')
  for (const target of targets) {
    t.test(target.name, async (t) => {
      const before = resources()
      t.equal(before.TCPSocketWrap ?? 0, 0, 'no database socket open before (the helper waits for its own to close)')
      const database = await openDatabase(target)
      t.equal(database.dialect, target.name)
      await database.ping()
      if (database.dialect === 'mysql') t.not(JSON.stringify(resources()), JSON.stringify(before), 'the open pool holds a socket')

      await migrateDatabase(database)
      const first = await layout(database)
      t.same(first.columns, EXPECTED_COLUMNS, 'the eight tables with the same columns, in order')
      t.same(first.indexes, EXPECTED_INDEXES, 'the named indexes, and no other')
      t.same(first.primaryKeys, EXPECTED_PRIMARY_KEYS, 'primary keys')
      t.notOk(Object.values(first.indexes).flat().includes('path'), 'the 2048-character path is in no index')
      t.equal(first.migrations, 2, 'both migrations recorded')

      await migrateDatabase(database)
      t.same(await layout(database), first, 'migrating again changes nothing')

      const { rows, gap, byContact, session } = await insertAndRead(database)
      t.equal(rows.length, 1)
      t.same(rows[0], { ...event('01HZXAMPLEab'), fromAt: null, name: null, company: null, reason: null }, 'an event reads back as written')
      t.equal(typeof rows[0]?.at, 'number', 'a 13-digit ms time is a JS number')
      t.equal(rows[0]?.at, AT)
      t.equal(gap[0]?.fromAt, AT - 60_000, 'a nullable bigint reads back as a number')
      t.same(byContact.map((r) => r.id).sort(), ['01HZXAMPLEab', '01HZXAMPLEgap'], 'contact ids compare case-sensitively (Contact-1 is another contact)')
      t.match(session, { name: '', company: '', endedAt: null, visibleSince: null, pagesCount: 0, visibleMs: Number.MAX_SAFE_INTEGER }, 'defaults, and 2^53-1 survives the round trip')

      if (database.dialect === 'sqlite') {
        const { sqlite } = database
        t.equal(sqlite.name, sqliteFilePath(target.dataDir), 'the file is cat.db in the data directory')
        t.equal(sqlite.pragma('journal_mode', { simple: true }), 'wal')
        t.equal(sqlite.pragma('busy_timeout', { simple: true }), 5000)
        t.equal(sqlite.pragma('foreign_keys', { simple: true }), 1)
        t.equal(sqlite.pragma('synchronous', { simple: true }), 1, 'synchronous = NORMAL')
      } else {
        const [tables] = await database.pool.query<RowDataPacket[]>(
          "SELECT TABLE_NAME AS t, ENGINE AS e, TABLE_COLLATION AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cat\\_%'",
        )
        t.equal(tables.length, 8)
        for (const row of tables) t.same({ engine: row.e, collation: row.c }, { engine: 'InnoDB', collation: 'utf8mb4_bin' }, `${row.t as string} is InnoDB, utf8mb4_bin`)
      }

      await database.close()
      t.same(resources(), before, 'close() resolves once every handle is closed')
      await database.close()
      await t.rejects(database.ping(), 'ping() rejects once closed')
      t.same(await settledResources(before), before, 'no handle afterwards either')
    })
  }
})

t.test('mysql: tables are utf8mb4 in a latin1 database (MySQL 5.7 default)', async (t) => {
  const url = await createTestMysqlDatabase(t, 'latin1', { charset: 'latin1' })
  const database = await openDatabase({ url, dataDir: createTestDataDir(t, 'latin1') })
  t.teardown(() => database.close())
  await migrateDatabase(database)
  if (database.dialect !== 'mysql') throw new Error('expected mysql')
  const [columns] = await database.pool.query<RowDataPacket[]>(
    "SELECT DISTINCT CHARACTER_SET_NAME AS cs FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cat\\_%' AND CHARACTER_SET_NAME IS NOT NULL",
  )
  t.same(columns.map((r) => r.cs), ['utf8mb4'])
  await database.db.insert(mysqlTables.events).values(event('emoji'))
  const [row] = await database.db.select({ title: mysqlTables.events.title }).from(mysqlTables.events)
  t.equal(row?.title, event('emoji').title, 'a 4-byte character survives')
})

t.test('mysql: two instances migrating the same fresh database at once both succeed', async (t) => {
  const url = await createTestMysqlDatabase(t, 'race')
  const dataDir = createTestDataDir(t, 'race')
  const instances = await Promise.all([1, 2, 3].map(() => openDatabase({ url, dataDir })))
  t.teardown(() => Promise.all(instances.map((d) => d.close())))
  const results = await Promise.allSettled(instances.map((d) => migrateDatabase(d)))
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled'], results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('; '))
  const result = await layout(instances[0] as Database)
  t.same(result.columns, EXPECTED_COLUMNS)
  t.equal(result.migrations, 2, 'each migration ran once')
  if (instances[0]?.dialect !== 'mysql') throw new Error('expected mysql')
  const [[lock]] = await instances[0].pool.query<RowDataPacket[]>(`SELECT IS_FREE_LOCK(${MIGRATION_LOCK_SQL}) AS free`)
  t.equal(Number(lock?.free), 1, 'the migration lock is released')
})

t.test('mysql: a migration waits while another holds the lock', async (t) => {
  const url = await createTestMysqlDatabase(t, 'lock')
  const dataDir = createTestDataDir(t, 'lock')
  const holder = await openDatabase({ url, dataDir })
  const migrator = await openDatabase({ url, dataDir })
  t.teardown(() => Promise.all([holder.close(), migrator.close()]))
  if (holder.dialect !== 'mysql') throw new Error('expected mysql')
  const connection = await holder.pool.getConnection()
  const [[held]] = await connection.query<RowDataPacket[]>(`SELECT GET_LOCK(${MIGRATION_LOCK_SQL}, 0) AS ok`)
  t.equal(Number(held?.ok), 1, 'another instance holds the lock')
  let done = false
  const migrating = migrateDatabase(migrator).finally(() => (done = true))
  // Until the server shows the migrator waiting on the lock (each turn is a round trip, no timer).
  let waiting = 0
  for (let i = 0; i < 500 && waiting === 0; i += 1) {
    const [[row]] = await holder.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'SELECT GET_LOCK(%'")
    waiting = Number(row?.n)
  }
  t.equal(waiting, 1, 'the migrator waits in GET_LOCK')
  const [[tables]] = await holder.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cat\\_%'")
  t.equal(Number(tables?.n), 0, 'and has created nothing')
  t.notOk(done)
  await connection.query(`SELECT RELEASE_LOCK(${MIGRATION_LOCK_SQL})`)
  connection.release()
  await migrating
  t.same((await layout(migrator)).columns, EXPECTED_COLUMNS, 'it migrates once the lock is free')
})

t.test('mysql: a connection the server drops is replaced, and its late errors do not end the process', async (t) => {
  const url = await createTestMysqlDatabase(t, 'kill')
  const dataDir = createTestDataDir(t, 'kill')
  const database = await openDatabase({ url, dataDir })
  const killer = await openDatabase({ url, dataDir })
  t.teardown(() => Promise.all([database.close(), killer.close()]))
  if (database.dialect !== 'mysql' || killer.dialect !== 'mysql') throw new Error('expected mysql')
  const connections: EventEmitter[] = []
  database.pool.pool.on('connection', (connection) => connections.push(connection))
  const [[row]] = await database.pool.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id')
  t.equal(connections.length, 1)
  const dead = connections[0] as EventEmitter
  const dropped = new Promise<void>((resolve) => dead.once('error', () => resolve()))
  await killer.pool.query('KILL CONNECTION ?', [row?.id])
  await dropped
  // mysql2 listens for a pooled connection's first error only; a second one (MySQL 8 sends an
  // error packet before hanging up) would be an unhandled 'error' event without ours.
  t.ok(dead.listenerCount('error') > 0, 'an error listener stays on the dead connection')
  dead.emit('error', new Error('a late error'))
  await database.ping()
  t.equal(connections.length, 2, 'ping() ran on a new connection')
})

t.test('mysql: nothing listening', async (t) => {
  const before = resources()
  const started = Date.now()
  const database = await openDatabase({ url: 'mysql://cat:s3cret@127.0.0.1:1/cat', dataDir: createTestDataDir(t, 'down') })
  await t.rejects(database.ping(), { code: 'ECONNREFUSED' }, 'ping() rejects')
  await t.rejects(migrateDatabase(database), { code: 'ECONNREFUSED' }, 'migrate rejects')
  t.ok(Date.now() - started < 5000, 'fails fast, does not hang')
  await database.close()
  t.same(await settledResources(before), before, 'close() leaves no open handle (a refused socket closes within a few turns)')
})

t.test('sqlite: reopening an existing file keeps the data and migrates nothing', async (t) => {
  const dataDir = join(createTestDataDir(t, 'reopen'), 'nested', 'dir')
  const first = await openDatabase({ url: undefined, dataDir })
  await migrateDatabase(first)
  if (first.dialect !== 'sqlite') throw new Error('expected sqlite')
  await first.db.insert(sqliteTables.onlineSamples).values({ t: AT - (AT % 60_000), online: 7 })
  await first.close()
  t.ok(existsSync(join(dataDir, 'cat.db')), 'the data directory was created')
  const second = await openDatabase({ url: undefined, dataDir })
  t.teardown(() => second.close())
  await migrateDatabase(second)
  if (second.dialect !== 'sqlite') throw new Error('expected sqlite')
  t.same(await second.db.select().from(sqliteTables.onlineSamples), [{ t: AT - (AT % 60_000), online: 7 }])
  t.equal((await layout(second)).migrations, 2)
})

t.test('the migrations are found from the sources and from the compiled output', async (t) => {
  t.equal(findProjectRoot(), ROOT.replace(/\/$/, ''))
  t.equal(findProjectRoot(join(ROOT, 'dist', 'src', 'activity')), ROOT.replace(/\/$/, ''), 'from dist/src/activity')
  for (const dialect of ['mysql', 'sqlite'] as const) t.ok(existsSync(join(migrationsFolder(dialect), 'meta', '_journal.json')), dialect)
  t.throws(() => findProjectRoot('/'), /no directory holding drizzle/)
})

/** Runs `src/activity/migrate-cli.ts` as `npm run migrate` would run its compiled twin. */
function migrateCli(env: Record<string, string>): Promise<RunResult> {
  return runTs('src/activity/migrate-cli.ts', [], { ...process.env, ...env })
}

t.test('migrate CLI', async (t) => {
  const url = await createTestMysqlDatabase(t, 'cli')
  const dataDir = createTestDataDir(t, 'cli')

  const mysql = await migrateCli({ DATABASE_URL: url, CAT_DATA_DIR: dataDir })
  t.same(mysql, { code: 0, stdout: 'migrated mysql database\n', stderr: '' })

  const sqlite = await migrateCli({ DATABASE_URL: '', CAT_DATA_DIR: dataDir })
  t.same(sqlite, { code: 0, stdout: `migrated sqlite database at ${join(dataDir, 'cat.db')}\n`, stderr: '' })

  const bad = await migrateCli({ DATABASE_URL: 'postgres://u:p@h/db', CAT_DATA_DIR: dataDir })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^DATABASE_URL: expected .*\n$/, 'a config error is one line')
  t.notMatch(bad.stderr, /u:p@/)

  const down = await migrateCli({ DATABASE_URL: mysqlUrlFor('cat', 'mysql://cat:Sup3rSecret@127.0.0.1:1'), CAT_DATA_DIR: dataDir })
  t.equal(down.code, 1)
  t.match(down.stderr, /^migration failed: .+\n$/)
  t.notMatch(down.stderr + down.stdout, /Sup3rSecret/, 'the password is never printed')
})

for (const dialect of ['mysql', 'sqlite'] as const) {
  t.test(`${dialect}: the install's documents are saved, replaced and read back by every store on the database`, async (t) => {
    const dataDir = createTestDataDir(t, 'install')
    const url = dialect === 'mysql' ? await createTestMysqlDatabase(t, 'install') : undefined
    const open = async (): Promise<ActivityStore> => {
      const database = await openDatabase({ url, dataDir })
      await migrateDatabase(database)
      const store = createSqlActivityStore({ database, now: () => 0 })
      t.teardown(() => store.close())
      return store
    }
    const [one, two] = [await open(), await open()]
    t.equal(await one.readInstallState('settings'), undefined, 'nothing before a save')
    await one.writeInstallState('settings', '{"presenceTimeoutS":90}', 1_000)
    t.same(await two.readInstallState('settings'), { value: '{"presenceTimeoutS":90}', updatedAt: 1_000 }, 'another store reads it')
    await two.writeInstallState('settings', '{"presenceTimeoutS":120}', 2_000)
    t.same(await one.readInstallState('settings'), { value: '{"presenceTimeoutS":120}', updatedAt: 2_000 }, 'a save replaces')
    t.equal(await one.readInstallState('license'), undefined, 'documents are apart by name')
  })
}
