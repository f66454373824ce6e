/**
 * The presence engine contract: one suite, run against the memory engine and the Redis engine
 * (real Redis, never a mock). Time is the injected clock, never a sleep; for Redis the feed
 * arrives over pub/sub, so assertions on it first wait until the feed has caught up.
 */
import t, { type Test } from 'tap'
import { REDIS_URL, cleanRedisSite, createClock, uniqueSite } from '../helpers/app.js'
import { openMemoryState, openRedisState, type SharedState } from '../../src/shared-state.js'
import { cleanClusterSite, clusterSeeds } from '../helpers/redis-cluster.js'
import type { FeedMessage, Heartbeat, HeartbeatEvent, Left, PresenceChange, PresenceEngine, Presence } from '../../src/presence/presence-engine.js'
import type { ActivityEvent } from '../../src/activity/event-log/event-log.js'
import { DEFAULT_MAX_TABS } from '../../src/presence/presence-engine.js'

type Clock = ReturnType<typeof createClock>
type ChangeMessage = Extract<FeedMessage, { type: 'change' }>
type MakeEngine = (t: Test, clock: Clock) => Promise<SharedState>

const TIMEOUT = 75_000
const IDLE = 600_000
/** interval 30 s + 10 s grace */
const GAP = 40_000
const T0 = 1_800_000_000_000
const WAIT_MS = 3_000

const CONTACT = 'contact-1'
const CLIENT = 'client-7'
const NAME = 'Ann Example'
const COMPANY = 'Acme Ltd'
// Real sids: 8-64 of A-Z a-z 0-9 _ - (route schema).
const SID1 = 'tab-aaaa-0001'
const SID2 = 'tab-bbbb-0002'

function beat(event: HeartbeatEvent, over: Partial<Heartbeat> = {}): Heartbeat {
  return { contactId: CONTACT, clientId: CLIENT, name: NAME, company: COMPANY, sid: SID1, path: '/clients/tickets', title: 'Tickets', event, ...over }
}

function presence(over: Partial<Presence> & { since: number; lastSeen: number }): Presence {
  return { contactId: CONTACT, clientId: CLIENT, name: NAME, company: COMPANY, path: '/clients/tickets', title: 'Tickets', state: 'active', tabs: 1, ...over }
}

/** An activity event as stored, without its id (ids are checked separately). */
function event(type: ActivityEvent['type'], at: number, over: Partial<Omit<ActivityEvent, 'id'>> = {}): Omit<ActivityEvent, 'id'> {
  const names = type === 'end' ? { name: NAME, company: COMPANY } : {}
  return { type, contactId: CONTACT, clientId: CLIENT, sid: SID1, path: '/clients/tickets', title: 'Tickets', at, ...names, ...over }
}

async function waitUntil<T>(what: string, check: () => T | undefined, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

interface Harness {
  engine: PresenceEngine
  /** Every feed message received so far, in order. */
  feed: FeedMessage[]
  /** Resolves once at least `count` changes have arrived (polls, fails after ~3 s). */
  waitChanges(count: number): Promise<ChangeMessage[]>
  /**
   * Resolves once the feed has caught up with the store (the last change's `n` is the
   * snapshot's `n`), so "no message" can be asserted without sleeping.
   */
  settled(): Promise<ChangeMessage[]>
  /** The activity events, oldest first, without ids; asserts the ids are unique and ordered. */
  events(): Promise<Omit<ActivityEvent, 'id'>[]>
}

/**
 * A snapshot with one position: the sum of its partitions' (each partition's positions count
 * its changes, so the sum counts the site's).
 */
async function snap(engine: PresenceEngine): Promise<{ position: number; online: Presence[] }> {
  const { positions, online } = await engine.snapshot()
  return { position: positions.reduce((sum, n) => sum + n, 0), online }
}

/** The changes without their partition number, which depends on the engine's layout. */
function unpartitioned(changes: readonly ChangeMessage[]): Omit<ChangeMessage, 'partition' | 'at'>[] {
  return changes.map(({ partition: _partition, at: _at, ...rest }) => rest)
}

/** Per partition, the positions of its changes in order: 1, 2, … when none is missing. */
function positionsByPartition(changes: readonly ChangeMessage[]): Map<number, number[]> {
  const by = new Map<number, number[]>()
  for (const m of changes) by.set(m.partition, [...(by.get(m.partition) ?? []), m.position])
  return by
}

/** Whether each partition's positions run 1, 2, … without a gap. */
function gapless(changes: readonly ChangeMessage[]): boolean {
  return [...positionsByPartition(changes).values()].every((positions) => positions.every((n, i) => n === i + 1))
}

function streamId(id: string): [bigint, bigint] {
  const match = /^(\d+)-(\d+)(?:-\d+)?$/.exec(id)
  if (match === null) throw new Error(`not a stream id: ${id}`)
  return [BigInt(match[1] as string), BigInt(match[2] as string)]
}

function harness(t: Test, state: SharedState): Harness {
  const engine = state.presence
  const feed: FeedMessage[] = []
  const unsubscribe = engine.onFeed((message) => feed.push(message))
  t.teardown(() => {
    unsubscribe()
  })
  const changes = (): ChangeMessage[] => {
    if (feed.some((m) => m.type === 'reset')) throw new Error('unexpected reset in the feed')
    return feed.filter((m): m is ChangeMessage => m.type === 'change')
  }
  return {
    engine,
    feed,
    waitChanges: (count) => waitUntil(`${count} feed changes`, () => {
      const got = changes()
      return got.length >= count ? got : undefined
    }),
    async settled() {
      const { positions } = await engine.snapshot()
      return waitUntil(`the feed to reach ${positions.join(',')}`, () => {
        const got = changes()
        const last: number[] = []
        for (const m of got) last[m.partition] = m.position
        return positions.every((n, partition) => (last[partition] ?? 0) >= n) ? got : undefined
      })
    },
    async events() {
      const all = await state.eventLog.tail(1000)
      // Unique, and in order within each partition's stream (the id's last part, when it has three).
      const previous = new Map<string, [bigint, bigint]>()
      t.equal(new Set(all.map(({ id }) => id)).size, all.length, 'event ids are unique')
      for (const { id } of all) {
        const current = streamId(id)
        const stream = id.split('-')[2] ?? ''
        const before = previous.get(stream) ?? [-1n, -1n]
        if (!(current[0] > before[0] || (current[0] === before[0] && current[1] > before[1]))) {
          throw new Error(`event ids out of order: ${id} after ${before.join('-')}`)
        }
        previous.set(stream, current)
      }
      return all.map(({ id: _id, ...rest }) => rest)
    },
  }
}

const kinds = (changes: ChangeMessage[]): string[] => changes.map((m) => m.change.kind)
const last = (changes: ChangeMessage[]): PresenceChange | undefined => changes.at(-1)?.change
const joined = (p: Presence): PresenceChange => ({ kind: 'joined', presence: p })
const updated = (p: Presence): PresenceChange => ({ kind: 'updated', presence: p })
const left = (l: Partial<Left> & { at: number; reason: Left['reason'] }): PresenceChange => ({ kind: 'left', left: { contactId: CONTACT, clientId: CLIENT, ...l } })
const byContact = (online: Presence[]): Presence[] => [...online].sort((a, b) => (a.contactId < b.contactId ? -1 : a.contactId > b.contactId ? 1 : 0))

function engineContract(name: string, makeEngine: MakeEngine): void {
  t.test(name, async (t) => {
    async function setup(t: Test): Promise<{ h: Harness; engine: PresenceEngine; state: SharedState; clock: Clock }> {
      const clock = createClock(T0)
      const state = await makeEngine(t, clock)
      return { h: harness(t, state), engine: state.presence, state, clock }
    }

    t.test('join: the first nav joins the contact', async (t) => {
      const { h, engine, state, clock } = await setup(t)
      t.equal(await engine.heartbeat(beat('nav')), 'joined')
      const expected = presence({ since: T0, lastSeen: T0 })
      const changes = await h.settled()
      t.strictSame(unpartitioned(changes), [{ type: 'change', position: 1, change: joined(expected) }], 'one joined change with the full PRESENCE')
      t.strictSame(changes.map((c) => c.at), [T0], 'stamped with the engine\'s time of the change (the metrics\' diff latency)')
      t.strictSame(await snap(engine), { position: 1, online: [expected] })
      t.strictSame(await h.events(), [event('join', T0, { name: NAME, company: COMPANY })])
      const [stored] = await state.eventLog.tail(10)
      t.type(stored?.id, 'string', 'events carry an id')
      t.equal(clock.now(), T0)
    })

    t.test('a periodic beat of a known tab is unchanged and only moves lastSeen', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(30_000)
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
      t.strictSame(kinds(await h.settled()), ['joined'], 'no feed message for a plain beat')
      t.strictSame(await snap(engine), { position: 1, online: [presence({ since: T0, lastSeen: T0 + 30_000 })] })
      // A second beat in the same ms (Redis: the fast path's ZADD changes nothing) is unchanged too.
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
      t.strictSame(kinds(await h.settled()), ['joined'])
      t.strictSame((await engine.snapshot()).online, [presence({ since: T0, lastSeen: T0 + 30_000 })])
      t.strictSame(await h.events(), [event('join', T0, { name: NAME, company: COMPANY })], 'a beat is no activity event')
    })

    t.test('a nav to another page is an update with the new path and title', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(5_000)
      t.equal(await engine.heartbeat(beat('nav', { path: '/clients/invoices', title: 'Invoices' })), 'updated')
      const expected = presence({ path: '/clients/invoices', title: 'Invoices', since: T0, lastSeen: T0 + 5_000 })
      const changes = await h.settled()
      t.strictSame(changes.map((m) => m.change), [joined(presence({ since: T0, lastSeen: T0 })), updated(expected)])
      t.strictSame(await snap(engine), { position: 2, online: [expected] })
      t.strictSame(await h.events(), [
        event('join', T0, { name: NAME, company: COMPANY }),
        event('nav', T0 + 5_000, { path: '/clients/invoices', title: 'Invoices' }),
      ])
    })

    t.test('a second tab is an update with tabs 2, not a join', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(1_000)
      t.equal(await engine.heartbeat(beat('nav', { sid: SID2, path: '/clients/projects', title: 'Projects' })), 'updated')
      const expected = presence({ path: '/clients/projects', title: 'Projects', since: T0, lastSeen: T0 + 1_000, tabs: 2 })
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated'])
      t.strictSame(last(changes), updated(expected))
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame(await h.events(), [
        event('join', T0, { name: NAME, company: COMPANY }),
        event('nav', T0 + 1_000, { sid: SID2, path: '/clients/projects', title: 'Projects' }),
      ])
    })

    t.test('tabs per contact are bounded: a new tab beyond the most allowed is refused and stores nothing', async (t) => {
      const { h, engine, clock } = await setup(t)
      const sid = (i: number): string => `tab-${String(i).padStart(4, '0')}-flood`
      for (let i = 0; i < DEFAULT_MAX_TABS; i += 1) {
        t.not(await engine.heartbeat(beat('nav', { sid: sid(i) })), 'refused', `tab ${i + 1} of ${DEFAULT_MAX_TABS}`)
        clock.advance(10)
      }
      const full = presence({ path: '/clients/tickets', since: T0, lastSeen: clock.now() - 10, tabs: DEFAULT_MAX_TABS })
      const feedBefore = (await h.settled()).length
      const eventsBefore = (await h.events()).length
      const extra = sid(DEFAULT_MAX_TABS)
      for (const kind of ['nav', 'beat', 'visible'] as const) {
        t.equal(await engine.heartbeat(beat(kind, { sid: extra, path: '/clients/elsewhere' })), 'refused', `${kind} of a new tab`)
      }
      t.equal(await engine.heartbeat(beat('hidden', { sid: extra })), 'ignored', 'hidden of an unknown tab')
      t.equal(await engine.heartbeat(beat('leave', { sid: extra })), 'ignored', 'leave of an unknown tab')
      t.strictSame((await engine.snapshot()).online, [full], 'the contact as before: same page, same tab count')
      t.equal((await h.events()).length, eventsBefore, 'no activity event for a refused tab')
      t.equal((await h.settled()).length, feedBefore, 'no feed message for a refused tab')

      // The open tabs go on as before.
      t.equal(await engine.heartbeat(beat('beat', { sid: sid(0) })), 'unchanged')
      t.equal(await engine.heartbeat(beat('nav', { sid: sid(1), path: '/clients/invoices' })), 'updated')
      // Another contact is not affected.
      t.equal(await engine.heartbeat(beat('nav', { contactId: 'contact-2', sid: extra })), 'joined')
      // Once a tab closes, a new one gets in.
      t.equal(await engine.heartbeat(beat('leave', { sid: sid(2) })), 'updated')
      t.equal(await engine.heartbeat(beat('nav', { sid: extra })), 'updated')
      t.equal((await engine.snapshot()).online.find((p) => p.contactId === CONTACT)?.tabs, DEFAULT_MAX_TABS)
      t.equal(await engine.heartbeat(beat('nav', { sid: sid(DEFAULT_MAX_TABS + 1) })), 'refused', 'full again')

      // All of them expire in one sweep: one leave, nothing left behind.
      clock.advance(TIMEOUT + 1)
      t.equal(await engine.sweep(), DEFAULT_MAX_TABS + 1, 'every tab of both contacts')
      t.strictSame((await engine.snapshot()).online, [])
      const changes = await h.settled()
      t.strictSame(changes.filter((m) => m.change.kind === 'left').map((m) => (m.change as { left: Left }).left.contactId).sort(), [CONTACT, 'contact-2'])
    })

    t.test('hidden: the only tab hidden makes the contact idle', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(10_000)
      t.equal(await engine.heartbeat(beat('hidden')), 'updated')
      const expected = presence({ state: 'idle', since: T0, lastSeen: T0 + 10_000 })
      const changes = await h.settled()
      t.strictSame(last(changes), updated(expected))
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame((await h.events()).map((e) => e.type), ['join', 'hidden'])
      t.strictSame((await h.events())[1], event('hidden', T0 + 10_000))
    })

    t.test('hidden: with two tabs, idle only once both are hidden', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(1_000)
      await engine.heartbeat(beat('nav', { sid: SID2 }))
      clock.advance(1_000)
      t.equal(await engine.heartbeat(beat('hidden')), 'unchanged', 'one of two tabs hidden')
      t.strictSame(kinds(await h.settled()), ['joined', 'updated'], 'no feed message')
      t.strictSame((await engine.snapshot()).online, [presence({ state: 'active', tabs: 2, since: T0, lastSeen: T0 + 2_000 })])
      clock.advance(1_000)
      t.equal(await engine.heartbeat(beat('hidden', { sid: SID2 })), 'updated', 'both tabs hidden')
      const expected = presence({ state: 'idle', tabs: 2, since: T0, lastSeen: T0 + 3_000 })
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'updated'])
      t.strictSame(last(changes), updated(expected))
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame((await h.events()).slice(2), [event('hidden', T0 + 2_000), event('hidden', T0 + 3_000, { sid: SID2 })])
    })

    t.test('visible again makes the contact active; so does a beat of the hidden tab', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(10_000)
      await engine.heartbeat(beat('hidden'))
      clock.advance(20_000)
      t.equal(await engine.heartbeat(beat('visible')), 'updated')
      let changes = await h.settled()
      t.strictSame(last(changes), updated(presence({ state: 'active', since: T0, lastSeen: T0 + 30_000 })))
      t.strictSame((await engine.snapshot()).online, [presence({ state: 'active', since: T0, lastSeen: T0 + 30_000 })])
      t.strictSame((await h.events()).at(-1), event('visible', T0 + 30_000))

      clock.advance(5_000)
      await engine.heartbeat(beat('hidden'))
      clock.advance(5_000)
      t.equal(await engine.heartbeat(beat('beat')), 'updated', 'a stray beat of a hidden tab shows it again')
      changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'updated', 'updated', 'updated'])
      t.strictSame(last(changes), updated(presence({ state: 'active', since: T0, lastSeen: T0 + 40_000 })))
      t.strictSame((await h.events()).map((e) => e.type), ['join', 'hidden', 'visible', 'hidden', 'visible'])
    })

    t.test('idle expiry: a hidden contact leaves after the idle timeout, at the time it was hidden', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(20_000)
      const hiddenAt = clock.now()
      await engine.heartbeat(beat('hidden'))
      clock.advance(599_000)
      t.equal(await engine.sweep(), 0, '599 s hidden: still there')
      t.strictSame((await engine.snapshot()).online, [presence({ state: 'idle', since: T0, lastSeen: hiddenAt })])
      clock.set(hiddenAt + IDLE - 1)
      t.equal(await engine.sweep(), 0, 'one ms before the idle timeout: still there')
      t.equal((await engine.snapshot()).online.length, 1)
      clock.set(hiddenAt + IDLE + 1)
      t.equal(await engine.sweep(), 1)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'left'])
      t.strictSame(last(changes), left({ at: hiddenAt, reason: 'idle' }))
      t.strictSame(await snap(engine), { position: 3, online: [] })
      t.strictSame(await h.events(), [
        event('join', T0, { name: NAME, company: COMPANY }),
        event('hidden', hiddenAt),
        event('end', hiddenAt, { reason: 'idle' }),
      ])
      t.equal(await engine.sweep(), 0, 'nothing left to sweep')
    })

    t.test('timeout: a contact without beats leaves 75 s after its last beat', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(74_000)
      t.equal(await engine.sweep(), 0, '74 s: still online')
      t.strictSame((await engine.snapshot()).online, [presence({ since: T0, lastSeen: T0 })])
      clock.set(T0 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'left'])
      t.strictSame(last(changes), left({ at: T0, reason: 'timeout' }))
      t.strictSame(await snap(engine), { position: 2, online: [] })
      t.strictSame(await h.events(), [event('join', T0, { name: NAME, company: COMPANY }), event('end', T0, { reason: 'timeout' })])
    })

    t.test('timeout: a sweep that found nothing still finds a tab set to expire earlier since (a clock set back)', async (t) => {
      const { engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(10_000)
      t.equal(await engine.sweep(), 0, 'nothing due yet')
      // Another instance's clock, or this one set back: a second tab expires before the first.
      clock.set(T0 - 60_000)
      await engine.heartbeat(beat('nav', { contactId: 'contact-2' }))
      t.equal(await engine.sweep(), 0)
      clock.set(T0 - 60_000 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1, 'the second contact, 75 s after its beat')
      t.strictSame((await engine.snapshot()).online.map((p) => p.contactId), [CONTACT], 'the first stays')
      clock.set(T0 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1, 'then the first')
    })

    t.test('timeout: a beat pushes the expiry to 75 s after the beat', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(60_000)
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
      clock.set(T0 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 0, 'past 75 s after the join, but not after the beat')
      clock.set(T0 + 60_000 + 74_000)
      t.equal(await engine.sweep(), 0, '74 s after the beat')
      t.strictSame((await engine.snapshot()).online, [presence({ since: T0, lastSeen: T0 + 60_000 })])
      clock.set(T0 + 60_000 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'left'])
      t.strictSame(last(changes), left({ at: T0 + 60_000, reason: 'timeout' }))
      t.strictSame((await h.events()).at(-1), event('end', T0 + 60_000, { reason: 'timeout' }))
    })

    t.test('timeout: one of two tabs expiring is an update with tabs 1, not a leave', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(30_000)
      await engine.heartbeat(beat('nav', { sid: SID2 }))
      clock.set(T0 + 80_000)
      t.equal(await engine.sweep(), 1)
      const expected = presence({ since: T0, lastSeen: T0 + 30_000, tabs: 1 })
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'updated'])
      t.strictSame(last(changes), updated(expected))
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame((await h.events()).at(-1), event('leave', T0), 'the expired tab leaves at its last beat')
    })

    t.test('expiry of every tab in one sweep ends the session when the contact was last seen', async (t) => {
      const { h, engine, clock } = await setup(t)
      // Visible tabs: the one that beat last is the one seen last, whatever the order they opened in.
      await engine.heartbeat(beat('nav'))
      clock.set(T0 + 5_000)
      await engine.heartbeat(beat('nav', { sid: SID2, path: '/clients/projects', title: 'Projects' }))
      clock.set(T0 + 10_000)
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
      clock.set(T0 + 200_000)
      t.equal(await engine.sweep(), 2)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'updated', 'left'])
      t.strictSame(changes[2]?.change, updated(presence({ path: '/clients/projects', title: 'Projects', since: T0, lastSeen: T0 + 10_000 })))
      t.strictSame(last(changes), left({ at: T0 + 10_000, reason: 'timeout' }))
      t.strictSame((await h.events()).slice(-2), [
        event('leave', T0 + 5_000, { sid: SID2, path: '/clients/projects', title: 'Projects' }),
        event('end', T0 + 10_000, { path: '/clients/projects', title: 'Projects', reason: 'timeout' }),
      ])
    })

    t.test('expiry of every tab in one sweep: the reason is that of the tab seen last', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.set(T0 + 1_000)
      await engine.heartbeat(beat('nav', { sid: SID2 }))
      clock.set(T0 + 2_000)
      await engine.heartbeat(beat('hidden', { sid: SID2 })) // gone at T0 + 602 s
      for (let minute = 1; minute <= 9; minute += 1) {
        clock.set(T0 + minute * 60_000)
        await engine.heartbeat(beat('beat')) // the last at T0 + 540 s: gone at T0 + 615 s
      }
      clock.set(T0 + 700_000)
      t.equal(await engine.sweep(), 2)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'updated', 'left'])
      t.strictSame(last(changes), left({ at: T0 + 540_000, reason: 'timeout' }))
      t.strictSame((await h.events()).at(-1), event('end', T0 + 540_000, { reason: 'timeout' }))
    })

    t.test('explicit leave of the only tab leaves; of one of two tabs updates', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(3_000)
      t.equal(await engine.heartbeat(beat('leave')), 'left')
      let changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'left'])
      t.strictSame(last(changes), left({ at: T0 + 3_000, reason: 'leave' }))
      t.strictSame(await snap(engine), { position: 2, online: [] })
      t.strictSame(await h.events(), [
        event('join', T0, { name: NAME, company: COMPANY }),
        event('leave', T0 + 3_000),
        event('end', T0 + 3_000, { reason: 'leave' }),
      ])

      const other = 'contact-2'
      clock.advance(1_000)
      await engine.heartbeat(beat('nav', { contactId: other }))
      await engine.heartbeat(beat('nav', { contactId: other, sid: SID2 }))
      clock.advance(1_000)
      t.equal(await engine.heartbeat(beat('leave', { contactId: other, sid: SID2 })), 'updated')
      const expected = presence({ contactId: other, since: T0 + 4_000, lastSeen: T0 + 4_000, tabs: 1 })
      changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'left', 'joined', 'updated', 'updated'])
      t.strictSame(last(changes), updated(expected))
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame((await h.events()).at(-1), event('leave', T0 + 5_000, { contactId: other, sid: SID2 }))
      t.equal(await engine.sweep(), 0, 'the closed tab is not swept later')
      clock.set(T0 + 4_000 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1, 'only the remaining tab expires')
    })

    t.test('a nav after a leave joins again with a new since', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(5_000)
      t.equal(await engine.heartbeat(beat('leave')), 'left')
      clock.advance(10_000)
      t.equal(await engine.heartbeat(beat('nav', { path: '/clients/contracts', title: 'Contracts' })), 'joined')
      const expected = presence({ path: '/clients/contracts', title: 'Contracts', since: T0 + 15_000, lastSeen: T0 + 15_000 })
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'left', 'joined'])
      t.strictSame(last(changes), joined(expected))
      t.strictSame(await snap(engine), { position: 3, online: [expected] })
      t.strictSame((await h.events()).at(-1), event('join', T0 + 15_000, { path: '/clients/contracts', title: 'Contracts', name: NAME, company: COMPANY }))
    })

    t.test('leave and hidden for an unknown contact or tab are ignored and store nothing', async (t) => {
      const { h, engine } = await setup(t)
      t.equal(await engine.heartbeat(beat('leave')), 'ignored')
      t.equal(await engine.heartbeat(beat('hidden')), 'ignored')
      t.strictSame(await snap(engine), { position: 0, online: [] })
      t.strictSame(await h.events(), [])
      t.strictSame(await h.settled(), [])

      await engine.heartbeat(beat('nav'))
      t.equal(await engine.heartbeat(beat('leave', { sid: SID2 })), 'ignored', 'unknown tab of a known contact')
      t.equal(await engine.heartbeat(beat('hidden', { sid: SID2 })), 'ignored', 'unknown tab of a known contact')
      t.strictSame(kinds(await h.settled()), ['joined'])
      t.strictSame(await snap(engine), { position: 1, online: [presence({ since: T0, lastSeen: T0 })] })
      t.strictSame((await h.events()).map((e) => e.type), ['join'])
      t.equal(await engine.sweep(), 0)
    })

    t.test('a beat or visible from an unknown tab joins the contact (the server lost it)', async (t) => {
      const { h, engine, clock } = await setup(t)
      t.equal(await engine.heartbeat(beat('beat', { path: '/clients/knowledge', title: 'Knowledge' })), 'joined')
      const expected = presence({ path: '/clients/knowledge', title: 'Knowledge', since: T0, lastSeen: T0 })
      let changes = await h.settled()
      t.strictSame(unpartitioned(changes), [{ type: 'change', position: 1, change: joined(expected) }])
      t.strictSame((await engine.snapshot()).online, [expected])
      t.strictSame(await h.events(), [event('join', T0, { path: '/clients/knowledge', title: 'Knowledge', name: NAME, company: COMPANY })])

      clock.advance(2_000)
      t.equal(await engine.heartbeat(beat('beat', { sid: SID2, path: '/clients/tickets/4', title: 'Ticket 4' })), 'updated', 'a beat of an unknown tab of a known contact adds the tab')
      changes = await h.settled()
      t.strictSame(last(changes), updated(presence({ path: '/clients/tickets/4', title: 'Ticket 4', since: T0, lastSeen: T0 + 2_000, tabs: 2 })))
      t.strictSame((await h.events()).at(-1), event('nav', T0 + 2_000, { sid: SID2, path: '/clients/tickets/4', title: 'Ticket 4' }))

      t.equal(await engine.heartbeat(beat('visible', { contactId: 'contact-2' })), 'joined', 'visible of an unknown contact joins too')
      t.strictSame(kinds(await h.settled()), ['joined', 'updated', 'joined'])
    })

    t.test('end(withdrawn) removes the contact at once; false when not online', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      await engine.heartbeat(beat('nav', { sid: SID2 }))
      clock.advance(5_000)
      t.equal(await engine.end(CONTACT, 'withdrawn'), true)
      const changes = await h.settled()
      t.strictSame(kinds(changes), ['joined', 'updated', 'left'])
      t.strictSame(last(changes), left({ at: T0 + 5_000, reason: 'withdrawn' }))
      t.strictSame(await snap(engine), { position: 3, online: [] })
      t.match((await h.events()).at(-1), { type: 'end', contactId: CONTACT, clientId: CLIENT, at: T0 + 5_000, reason: 'withdrawn' })

      t.equal(await engine.end(CONTACT, 'withdrawn'), false, 'already gone')
      t.equal(await engine.end('nobody', 'withdrawn'), false, 'never online')
      t.strictSame(kinds(await h.settled()), ['joined', 'updated', 'left'], 'no feed message for an absent contact')
      clock.advance(IDLE + TIMEOUT)
      t.equal(await engine.sweep(), 0, 'its tabs are gone too')

      t.equal(await engine.heartbeat(beat('beat')), 'joined', 'a later beat of the old tab starts a new presence')
      t.strictSame((await engine.snapshot()).online, [presence({ since: clock.now(), lastSeen: clock.now() })])
    })

    t.test('feed numbering: n rises by one per change and the snapshot n is the last one', async (t) => {
      const { h, engine, clock } = await setup(t)
      const steps: [string, () => Promise<unknown>][] = [
        ['join c1', () => engine.heartbeat(beat('nav'))],
        ['beat c1 (no change)', () => engine.heartbeat(beat('beat'))],
        ['join c2', () => engine.heartbeat(beat('nav', { contactId: 'contact-2' }))],
        ['nav c1', () => engine.heartbeat(beat('nav', { path: '/clients/invoices' }))],
        ['leave of an unknown tab (no change)', () => engine.heartbeat(beat('leave', { sid: SID2 }))],
        ['hidden c2', () => engine.heartbeat(beat('hidden', { contactId: 'contact-2' }))],
        ['second tab c1', () => engine.heartbeat(beat('nav', { sid: SID2 }))],
        ['end of an absent contact (no change)', () => engine.end('nobody', 'withdrawn')],
        ['leave c1 tab 2', () => engine.heartbeat(beat('leave', { sid: SID2 }))],
        ['end c2', () => engine.end('contact-2', 'withdrawn')],
        ['leave c1', () => engine.heartbeat(beat('leave'))],
      ]
      for (const [label, step] of steps) {
        clock.advance(1_000)
        await step()
        const changes = await h.settled()
        t.equal((await snap(engine)).position, changes.length, `after ${label}: the snapshot's positions count the changes`)
      }
      const changes = await h.settled()
      t.equal(changes.length, 8)
      t.ok(gapless(changes), 'one number per change of a partition, no gaps')
      t.strictSame(kinds(changes), ['joined', 'joined', 'updated', 'updated', 'updated', 'updated', 'left', 'left'])
      t.equal(h.feed.length, 8, 'no resets')
    })

    t.test('a late beat of a visible tab appends a gap event; a beat on time does not', async (t) => {
      const { h, engine, clock } = await setup(t)
      await engine.heartbeat(beat('nav'))
      clock.advance(GAP)
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
      clock.advance(GAP + 1)
      t.equal(await engine.heartbeat(beat('beat')), 'unchanged', 'still the fast path')
      const events = await h.events()
      t.strictSame(events.map((e) => e.type), ['join', 'gap'], 'only the late beat made a gap')
      t.strictSame(events[1], event('gap', T0 + 2 * GAP + 1, { from: T0 + GAP }))
      t.strictSame((await h.settled()).length, 1, 'a gap is not a presence change')
    })

    t.test('heartbeats sent together, without waiting: many beats at once, and the order of arrival kept', async (t) => {
      const { h, engine, clock } = await setup(t)
      const ids = Array.from({ length: 120 }, (_, i) => `many-${i}`)
      t.strictSame(await Promise.all(ids.map((id) => engine.heartbeat(beat('nav', { contactId: id })))), ids.map(() => 'joined'))
      clock.advance(30_000)
      // Known tabs on time, an unknown contact, a late one among them: each gets its own answer.
      const results = await Promise.all([...ids.map((id) => engine.heartbeat(beat('beat', { contactId: id }))), engine.heartbeat(beat('beat', { contactId: 'newcomer' }))])
      t.strictSame(results, [...ids.map(() => 'unchanged'), 'joined'])
      t.equal((await engine.snapshot()).online.filter((p) => p.lastSeen === T0 + 30_000).length, ids.length + 1, 'every beat moved its tab')

      // A beat then a leave of the same tab, sent together: the leave comes last and wins.
      clock.advance(1_000)
      t.strictSame(await Promise.all([engine.heartbeat(beat('beat', { contactId: 'many-0' })), engine.heartbeat(beat('leave', { contactId: 'many-0' }))]), ['unchanged', 'left'])
      // A leave then a beat: the beat comes last and starts a new presence.
      t.strictSame(await Promise.all([engine.heartbeat(beat('leave', { contactId: 'many-1' })), engine.heartbeat(beat('beat', { contactId: 'many-1' }))]), ['left', 'joined'])
      const online = new Set((await engine.snapshot()).online.map((p) => p.contactId))
      t.notOk(online.has('many-0'), 'many-0 stays gone')
      t.ok(online.has('many-1'), 'many-1 is back')
      const changes = await h.settled()
      t.strictSame(changes.slice(-3).map((m) => [m.change.kind, m.change.kind === 'left' ? m.change.left.contactId : m.change.presence.contactId]), [['left', 'many-0'], ['left', 'many-1'], ['joined', 'many-1']])
    })

    t.test('a large snapshot comes in parts, with turns of the event loop between them: the process serves others while it is written', async (t) => {
      const { engine } = await setup(t)
      const ids = Array.from({ length: 5000 }, (_, i) => `parts-${i}`)
      for (let i = 0; i < ids.length; i += 500) await Promise.all(ids.slice(i, i + 500).map((id) => engine.heartbeat(beat('nav', { contactId: id }))))
      const reader = engine.snapshotParts()
      let parts = 0
      let turned = false
      const seen: string[] = []
      for await (const part of reader.parts) {
        if (parts === 0) setImmediate(() => (turned = true))
        parts += 1
        for (const presence of part.presences()) seen.push(presence.contactId)
        const json = part.json()
        t.equal(json === undefined ? 0 : (JSON.parse(Buffer.from(json).toString()) as unknown[]).length, part.size, 'each part\'s JSON holds its contacts')
      }
      t.ok(parts > 1, `more than one part (${parts})`)
      t.ok(turned, 'the event loop turned before the last part')
      t.strictSame([...seen].sort(), [...ids].sort(), 'every contact once')
    })

    t.test('values holding the record delimiters (US, RS and the escapes), spaces and unicode round-trip exactly', async (t) => {
      const { h, engine, clock } = await setup(t)
      // The Redis record joins fields with US (\x1f) and escapes RS (\x1e) and US as RS "0" / RS "1".
      const odd = {
        contactId: 'c\x1fd|e\x1e1 f',
        clientId: 'client\x1f7\x1e',
        name: 'Ann \x1e0\x1f\x1e1 "Quote" | 0tab ; \u{1F408}',
        company: '\x1f',
        path: '/p/\x1e\x1e1\x1f?x=1 2',
        title: '',
      }
      const base = { since: T0, ...odd }
      // Only join and end events carry name and company.
      const { name: _name, company: _company, ...ids } = odd
      t.equal(await engine.heartbeat(beat('nav', odd)), 'joined')
      t.strictSame(last(await h.settled()), joined(presence({ ...base, lastSeen: T0 })))
      t.strictSame((await engine.snapshot()).online, [presence({ ...base, lastSeen: T0 })])
      t.strictSame(await h.events(), [event('join', T0, odd)])

      // Rewritten by the full script: a second tab on another odd page, then hidden.
      const page2 = { path: '\x1e', title: 'T\x1f\x1f\x1e\x1e 1 0' }
      clock.set(T0 + 1_000)
      t.equal(await engine.heartbeat(beat('nav', { ...odd, ...page2, sid: SID2 })), 'updated')
      clock.set(T0 + 2_000)
      t.equal(await engine.heartbeat(beat('hidden', { ...odd, sid: SID2 })), 'unchanged')
      const twoTabs = presence({ ...base, ...page2, lastSeen: T0 + 2_000, tabs: 2 })
      t.strictSame((await engine.snapshot()).online, [twoTabs])

      // Read by the fast path (a late beat appends a gap with the record's page).
      clock.set(T0 + GAP + 1)
      t.equal(await engine.heartbeat(beat('beat', odd)), 'unchanged')
      t.strictSame((await h.events()).at(-1), event('gap', T0 + GAP + 1, { ...ids, ...page2, from: T0 }))

      // Rewritten by the sweeper: the visible tab expires, the hidden one stays.
      clock.set(T0 + GAP + 1 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1)
      const idle = presence({ ...base, ...page2, state: 'idle', lastSeen: T0 + 2_000 })
      t.strictSame(last(await h.settled()), updated(idle))
      t.strictSame((await engine.snapshot()).online, [idle])
      t.strictSame((await h.events()).at(-1), event('leave', T0 + GAP + 1, { ...ids, ...page2 }))

      t.equal(await engine.end(odd.contactId, 'withdrawn'), true)
      t.strictSame(last(await h.settled()), left({ contactId: odd.contactId, clientId: odd.clientId, at: clock.now(), reason: 'withdrawn' }))
      t.strictSame((await h.events()).at(-1), event('end', clock.now(), { ...odd, ...page2, sid: '', reason: 'withdrawn' }))
      t.strictSame((await engine.snapshot()).online, [])
    })

    t.test("contact ids containing '|' work through join, expiry and leave", async (t) => {
      const { h, engine, clock } = await setup(t)
      const odd = 'a|b'
      t.equal(await engine.heartbeat(beat('nav', { contactId: odd })), 'joined')
      clock.set(T0 + 1_000)
      t.equal(await engine.heartbeat(beat('nav', { contactId: 'a' })), 'joined', "'a' is another contact")
      clock.set(T0 + 2_000)
      t.equal(await engine.heartbeat(beat('nav', { contactId: odd, sid: SID2 })), 'updated')
      clock.set(T0 + 3_000)
      t.equal(await engine.heartbeat(beat('hidden', { contactId: odd, sid: SID2 })), 'unchanged')
      clock.set(T0 + 4_000)
      t.equal(await engine.heartbeat(beat('beat', { contactId: 'a' })), 'unchanged', 'fast path')
      t.strictSame(byContact((await engine.snapshot()).online), [
        presence({ contactId: 'a', since: T0 + 1_000, lastSeen: T0 + 4_000 }),
        presence({ contactId: odd, since: T0, lastSeen: T0 + 3_000, tabs: 2 }),
      ])

      clock.set(T0 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1, "the visible tab of 'a|b' times out")
      let changes = await h.settled()
      t.strictSame(last(changes), updated(presence({ contactId: odd, state: 'idle', since: T0, lastSeen: T0 + 3_000 })))
      t.strictSame((await h.events()).at(-1), event('leave', T0, { contactId: odd }))

      clock.set(T0 + 4_000 + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1)
      changes = await h.settled()
      t.strictSame(last(changes), left({ contactId: 'a', at: T0 + 4_000, reason: 'timeout' }))

      t.equal(await engine.heartbeat(beat('leave', { contactId: odd, sid: SID2 })), 'left')
      changes = await h.settled()
      t.strictSame(last(changes), left({ contactId: odd, at: T0 + 4_000 + TIMEOUT + 1, reason: 'leave' }))
      t.strictSame(await snap(engine), { position: changes.length, online: [] })

      const rejoin = clock.now()
      t.equal(await engine.heartbeat(beat('nav', { contactId: odd })), 'joined')
      clock.set(rejoin + TIMEOUT + 1)
      t.equal(await engine.sweep(), 1)
      changes = await h.settled()
      t.strictSame(last(changes), left({ contactId: odd, at: rejoin, reason: 'timeout' }))

      const again = clock.now()
      await engine.heartbeat(beat('nav', { contactId: odd }))
      await engine.heartbeat(beat('hidden', { contactId: odd }))
      clock.set(again + IDLE + 1)
      t.equal(await engine.sweep(), 1)
      changes = await h.settled()
      t.strictSame(last(changes), left({ contactId: odd, at: again, reason: 'idle' }))
      t.strictSame((await h.events()).at(-1), event('end', again, { contactId: odd, reason: 'idle' }))

      await engine.heartbeat(beat('nav', { contactId: odd }))
      t.equal(await engine.end(odd, 'withdrawn'), true)
      t.strictSame(last(await h.settled()), left({ contactId: odd, at: clock.now(), reason: 'withdrawn' }))
      t.strictSame((await engine.snapshot()).online, [])
      t.equal(h.feed.filter((m) => m.type === 'reset').length, 0)
    })
  })
}

async function memoryEngine(t: Test, clock: Clock): Promise<SharedState> {
  const state = openMemoryState({ now: clock.now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

async function redisEngine(t: Test, clock: Clock, site = uniqueSite('presence')): Promise<SharedState> {
  cleanRedisSite(t, site)
  const state = await openRedisState({ url: REDIS_URL, site, now: clock.now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

/** The shared test Redis Cluster (3 masters, 3 replicas), through the same engine code. */
async function clusterEngine(t: Test, clock: Clock, site = uniqueSite('presence-cluster')): Promise<SharedState> {
  cleanClusterSite(t, site)
  const state = await openRedisState({ clusterNodes: clusterSeeds(), site, now: clock.now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: IDLE, gapAfterMs: GAP })
  t.teardown(() => state.close())
  return state
}

type SiteEngine = (t: Test, clock: Clock, site: string) => Promise<SharedState>

engineContract('memory engine', memoryEngine)
engineContract('redis engine', (t, clock) => redisEngine(t, clock))
engineContract('redis cluster engine', (t, clock) => clusterEngine(t, clock))
sweptOnce('redis engine', redisEngine)
sweptOnce('redis cluster engine', clusterEngine)

function sweptOnce(name: string, makeEngine: SiteEngine): void {
  t.test(`${name}: each expiry is swept exactly once across instances`, async (t) => {
    async function twoInstances(t: Test): Promise<{ a: Harness; b: Harness; clock: Clock }> {
      const clock = createClock(T0)
      const site = uniqueSite('presence-once')
      const a = harness(t, await makeEngine(t, clock, site))
      const b = harness(t, await makeEngine(t, clock, site))
      return { a, b, clock }
    }

    t.test('two engines sweep one expired contact at once: one left in each feed, one end event', async (t) => {
      const { a, b, clock } = await twoInstances(t)
      t.equal(await a.engine.heartbeat(beat('nav')), 'joined')
      await b.waitChanges(1)
      clock.set(T0 + TIMEOUT + 1)
      const removed = await Promise.all([a.engine.sweep(), b.engine.sweep()])
      t.equal(removed[0] + removed[1], 1, 'one call removed it')
      for (const [label, h] of [['a', a], ['b', b]] as const) {
        const changes = await h.settled()
        t.strictSame(changes.map((m) => m.change), [joined(presence({ since: T0, lastSeen: T0 })), left({ at: T0, reason: 'timeout' })], `engine ${label} sees one join and one leave`)
        t.strictSame(changes.map((m) => m.position), [1, 2])
      }
      const events = await a.events()
      t.equal(events.filter((e) => e.type === 'end').length, 1, 'one end event in the stream')
      t.strictSame(await b.events(), events, 'both read the same stream')
      t.strictSame(await Promise.all([a.engine.sweep(), b.engine.sweep()]), [0, 0], 'nothing left to sweep')
    })

    t.test('many contacts, four concurrent sweeps: every leave exactly once', async (t) => {
      const { a, b, clock } = await twoInstances(t)
      const ids = Array.from({ length: 25 }, (_, i) => `contact-${i}`)
      for (const [i, id] of ids.entries()) {
        const engine = i % 2 === 0 ? a.engine : b.engine
        await engine.heartbeat(beat('nav', { contactId: id }))
        if (i % 5 === 0) await engine.heartbeat(beat('nav', { contactId: id, sid: SID2 }))
      }
      clock.set(T0 + TIMEOUT + 1)
      const removed = await Promise.all([a.engine.sweep(), b.engine.sweep(), a.engine.sweep(), b.engine.sweep()])
      t.equal(removed.reduce((sum, r) => sum + r, 0), 30, 'each of the 30 tabs removed by one call')
      const [changesA, changesB] = [await a.settled(), await b.settled()]
      const inOrder = (changes: ChangeMessage[]): ChangeMessage[] => [...changes].sort((x, y) => x.partition - y.partition || x.position - y.position)
      t.strictSame(inOrder(changesA), inOrder(changesB), 'both instances see the same feed')
      const leftIds = changesA.flatMap((m) => (m.change.kind === 'left' ? [m.change.left.contactId] : []))
      t.strictSame([...leftIds].sort(), [...ids].sort(), 'one left per contact')
      t.ok(gapless(changesA), 'no gaps in the positions of any partition')
      const ends = (await a.events()).filter((e) => e.type === 'end').map((e) => e.contactId)
      t.strictSame(ends.sort(), [...ids].sort(), 'one end event per contact')
      t.strictSame((await a.engine.snapshot()).online, [])
    })
  })
}
