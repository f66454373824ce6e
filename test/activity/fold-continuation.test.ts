/**
 * The writer continues each contact's fold from the state stored with it, and re-folds from
 * the stored events when an event comes out of order. Whatever the batches, their order, the
 * redeliveries and the number of writers at once, the stored sessions and page visits must be
 * those of one fold over each contact's events in id order. Random activity (seeded), real
 * MariaDB and SQLite.
 */
import t from 'tap'
import { asc } from 'drizzle-orm'
import { foldEvents, type FoldState, type PageVisitRow, type SessionRow } from '../../src/activity/fold.js'
import { migrateDatabase, openDatabase, type Database } from '../../src/activity/database.js'
import { createSqlActivityStore } from '../../src/activity/sql-activity-store.js'
import { sortableId, type ActivityStore } from '../../src/activity/activity-store.js'
import * as mysqlTables from '../../src/activity/schema-mysql.js'
import * as sqliteTables from '../../src/activity/schema-sqlite.js'
import type { ActivityEvent } from '../../src/activity/event-log/event-log.js'
import { openTestDatabases, type TestDatabaseTarget } from '../helpers/database.js'

function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function randomActivity(seed: number, contacts: number, events: number, t0 = 1_800_000_000_000): ActivityEvent[] {
  const rnd = random(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T
  const out: ActivityEvent[] = []
  const online = new Map<string, Set<string>>()
  let clock = t0
  for (let i = 0; i < events; i += 1) {
    clock += 1 + Math.floor(rnd() * 5000)
    const contactId = `c${Math.floor(rnd() * contacts)}`
    const tabs = online.get(contactId)
    const base = { id: `${clock}-${i % 7}`, contactId, clientId: `k${contactId.length}`, path: `/p${Math.floor(rnd() * 9)}`, title: `T${i}`, at: clock }
    if (tabs === undefined || tabs.size === 0) {
      // Sometimes an event whose join never comes (its contact was already online elsewhere).
      if (tabs === undefined && rnd() < 0.05) {
        out.push({ ...base, type: pick(['nav', 'hidden', 'visible'] as const), sid: 's0' })
        continue
      }
      const sid = `s${Math.floor(rnd() * 3)}`
      online.set(contactId, new Set([sid]))
      out.push({ ...base, type: 'join', sid, name: `N ${contactId}`, company: 'Co' })
      continue
    }
    const sid = rnd() < 0.2 ? `s${Math.floor(rnd() * 4)}` : pick([...tabs])
    const type = pick(['nav', 'nav', 'hidden', 'visible', 'gap', 'leave', 'end', 'beat'] as const)
    if (type === 'beat') continue
    if (type === 'end') {
      online.set(contactId, new Set())
      out.push({ ...base, type, sid, reason: pick(['leave', 'timeout', 'idle'] as const) })
      continue
    }
    if (type === 'nav') tabs.add(sid)
    if (type === 'leave') tabs.delete(sid)
    const event: ActivityEvent = { ...base, type, sid }
    if (type === 'gap') event.from = clock - Math.floor(rnd() * 60_000)
    out.push(event)
  }
  // Stream ids rise: ms, then a sequence within the ms.
  return out.map((event, i) => ({ ...event, id: `${event.at}-${i}` }))
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rnd() * (i + 1))
    ;[items[i], items[j]] = [items[j] as T, items[i] as T]
  }
  return items
}

/** Consecutive batches of 1..max events. */
function batches(events: readonly ActivityEvent[], max: number, rnd: () => number): ActivityEvent[][] {
  const out: ActivityEvent[][] = []
  for (let i = 0; i < events.length; ) {
    const size = 1 + Math.floor(rnd() * max)
    out.push(events.slice(i, i + size))
    i += size
  }
  return out
}

type Rows = { sessions: SessionRow[]; pages: PageVisitRow[] }
const byId = <T extends { id: string }>(rows: T[]): T[] => [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

/** The truth: one fold per contact over all its events in id order, as the store names ids. */
function expected(events: readonly ActivityEvent[]): Rows {
  const byContact = new Map<string, ActivityEvent[]>()
  for (const event of events) byContact.set(event.contactId, [...(byContact.get(event.contactId) ?? []), { ...event, id: sortableId(event.id) }])
  const out: Rows = { sessions: [], pages: [] }
  for (const list of byContact.values()) {
    const folded = foldEvents(byId(list))
    out.sessions.push(...folded.sessions)
    out.pages.push(...folded.pages)
  }
  return { sessions: byId(out.sessions), pages: byId(out.pages) }
}

async function stored(database: Database): Promise<Rows> {
  // The session rows as the fold makes them (the writer's own columns, last_event_id and fold_state, aside).
  const session = ({ lastEventId: _lastEventId, foldState: _foldState, ...row }: SessionRow & { lastEventId: unknown; foldState: unknown }): SessionRow => row
  if (database.dialect === 'mysql') {
    const { db } = database
    return { sessions: (await db.select().from(mysqlTables.sessions).orderBy(asc(mysqlTables.sessions.id))).map(session), pages: await db.select().from(mysqlTables.pageVisits).orderBy(asc(mysqlTables.pageVisits.id)) }
  }
  const { db } = database
  return { sessions: (await db.select().from(sqliteTables.sessions).orderBy(asc(sqliteTables.sessions.id))).map(session), pages: await db.select().from(sqliteTables.pageVisits).orderBy(asc(sqliteTables.pageVisits.id)) }
}

async function rawQuery(database: Database, sql: string): Promise<void> {
  if (database.dialect === 'mysql') await database.pool.query(sql)
  else database.sqlite.exec(sql)
}

t.test('fold: continuing from the state of any prefix gives the rows of one fold over everything', async (t) => {
  for (let seed = 1; seed <= 60; seed += 1) {
    const rnd = random(seed * 7919)
    const events = randomActivity(seed, 3, 120).map((event) => ({ ...event, id: sortableId(event.id) }))
    for (const contactId of ['c0', 'c1', 'c2']) {
      const own = events.filter((event) => event.contactId === contactId)
      const whole = foldEvents(own)
      // A session and the page its join opened share an id: two maps.
      const sessions = new Map<string, SessionRow>()
      const pages = new Map<string, PageVisitRow>()
      let state: FoldState | null = null
      for (let i = 0; i < own.length; ) {
        const size = 1 + Math.floor(rnd() * 6)
        // Through JSON, as it would be stored: nothing may depend on object identity.
        const folded = foldEvents(own.slice(i, i + size), JSON.parse(JSON.stringify(state)) as FoldState | null)
        for (const row of folded.sessions) sessions.set(row.id, row)
        for (const row of folded.pages) pages.set(row.id, row)
        state = folded.state
        i += size
      }
      const got = { sessions: byId([...sessions.values()]), pages: byId([...pages.values()]) }
      const want = { sessions: byId(whole.sessions), pages: byId(whole.pages) }
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.same(got, want, `seed ${seed}, ${contactId}`)
        return
      }
      t.same(state, whole.state, `seed ${seed} ${contactId}: the same state at the end`)
    }
  }
})

async function openStores(targets: readonly TestDatabaseTarget[], t: { teardown(fn: () => unknown): void }): Promise<{ database: Database; store: ActivityStore }[]> {
  const out: { database: Database; store: ActivityStore }[] = []
  for (const target of targets) {
    const database = await openDatabase(target)
    t.teardown(() => database.close())
    out.push({ database, store: createSqlActivityStore({ database, now: () => 0 }) })
  }
  return out
}

for (const name of ['mysql', 'sqlite'] as const) {
  t.test(`${name}: writer`, async (t) => {
    const pick = async (label: string): Promise<TestDatabaseTarget> => (await openTestDatabases(t, label)).find((target) => target.name === name) as TestDatabaseTarget
    const fresh = async (label: string): Promise<{ database: Database; store: ActivityStore }> => {
      const target = await pick(label)
      const [opened] = await openStores([target], t)
      await migrateDatabase((opened as { database: Database }).database)
      return opened as { database: Database; store: ActivityStore }
    }

    t.test('batches in stream order: the rows of one fold over all events', async (t) => {
      const events = randomActivity(11, 30, 1500)
      const { database, store } = await fresh('inorder')
      for (const batch of batches(events, 80, random(12))) await store.write(batch)
      t.same(await stored(database), expected(events))
    })

    t.test('shuffled batches, each delivered once or twice: the same rows', async (t) => {
      const events = randomActivity(21, 20, 800)
      const rnd = random(22)
      const { database, store } = await fresh('shuffled')
      const deliveries = batches(events, 40, rnd).flatMap((batch) => (rnd() < 0.3 ? [batch, shuffle([...batch], rnd).slice(0, 1 + Math.floor(rnd() * batch.length))] : [batch]))
      // Mostly in order, with some batches delivered late (another writer, a redelivery).
      for (let i = 0; i < deliveries.length; i += 1) {
        if (rnd() < 0.25 && i + 3 < deliveries.length) {
          const [late] = deliveries.splice(i, 1)
          deliveries.splice(i + 1 + Math.floor(rnd() * 3), 0, late as ActivityEvent[])
        }
      }
      for (const batch of deliveries) await store.write(batch)
      t.same(await stored(database), expected(events))
    })

    t.test('in-order events continue from the stored state: the events already written are not read again', async (t) => {
      const events = randomActivity(31, 25, 600)
      const { database, store } = await fresh('state')
      const half = events.findIndex((event) => event.at > (events[300] as ActivityEvent).at)
      for (const batch of batches(events.slice(0, half), 50, random(32))) await store.write(batch)
      // Were the first half read back, its loss would show in the rows.
      await rawQuery(database, 'DELETE FROM cat_events')
      for (const batch of batches(events.slice(half), 50, random(33))) await store.write(batch)
      t.same(await stored(database), expected(events))
    })

    t.test('strings that need escaping, and placeholders, come back as written', async (t) => {
      const { store } = await fresh('strings')
      const odd = ["it's", 'say "hi"', 'back\\slash \\', 'nul\u0000byte', 'line\nbreak\ttab\r', 'ctrl-z \u001a', '? ?? :name', 'Grüße 東京 🎉', "'); DROP TABLE cat_events; --"]
      const events: ActivityEvent[] = odd.map((text, i) => ({ id: `${1_800_000_000_000 + i}-0`, type: i === 0 ? 'join' : 'nav', contactId: `c ${text}`.slice(0, 40), clientId: 'k', sid: 's', path: `/${text}`, title: text, at: 1_800_000_000_000 + i, ...(i === 0 ? { name: text, company: text } : {}) }))
      const contactEvents = events.map((event) => ({ ...event, id: event.id.replace(/-0$/, '-1'), contactId: 'odd' }))
      await store.write([...contactEvents, ...events])
      const exported = await store.exportContact('odd')
      t.same(exported.events.map((event) => [event.path, event.title]), odd.map((text) => [`/${text}`, text]))
      t.same(exported.sessions[0]?.pages.map((page) => page.title), odd)
      for (const event of events) t.equal((await store.exportContact(event.contactId)).events.length, 1, JSON.stringify(event.contactId))
    })

    if (name === 'mysql') {
      t.test('two writers (two pools) writing overlapping batches at once: the rows of one fold', async (t) => {
        const events = randomActivity(51, 15, 1200)
        const target = await pick('twowriters')
        const [a, b] = await openStores([target, target], t)
        if (a === undefined || b === undefined) throw new Error('two stores')
        await migrateDatabase(a.database)
        const rnd = random(52)
        const all = batches(events, 30, rnd)
        // Each writer takes every other batch and also redelivers some of the other's: one
        // contact's events are split between concurrent transactions that commit in any order.
        const mine = (parity: number): ActivityEvent[][] => all.flatMap((batch, i) => (i % 2 === parity ? [batch] : rnd() < 0.3 ? [batch] : []))
        const [ofA, ofB] = [mine(0), mine(1)]
        const run = async (store: ActivityStore, list: ActivityEvent[][]): Promise<void> => {
          for (const batch of list) await store.write(batch)
        }
        await Promise.all([run(a.store, ofA), run(b.store, ofB)])
        t.same(await stored(a.database), expected(events))
      })
    }
  })
}
