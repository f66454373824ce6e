/**
 * The fast path's memory of recent beats (src/presence/redis/recent-beats.ts): a beat within the
 * gap of one this instance had applied moves the tab's expiry with one command, and every other
 * beat is judged from the tab's score as before. The engine tests run on a private redis-server,
 * whose INFO commandstats counts this test's commands only.
 */
import t from 'tap'
import type { Redis } from 'ioredis'
import { createClock, uniqueSite } from '../helpers/app.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { RecentBeats } from '../../src/presence/redis/recent-beats.js'
import { openRedisState } from '../../src/shared-state.js'
import type { Heartbeat, HeartbeatEvent } from '../../src/presence/presence-engine.js'

const T0 = 1_800_000_000_000
const TIMEOUT = 75_000
const GAP = 40_000

t.test('RecentBeats: a beat is recent within the gap of the one noted, judged by whole seconds', async (t) => {
  const beats = new RecentBeats(T0)
  t.equal(beats.recent('ann|tab-1', T0, GAP), false, 'a tab never noted')
  beats.note(beats.lastA, beats.lastB, T0 + 1500, GAP)
  t.equal(beats.recent('ann|tab-1', T0 + 1000 + GAP, GAP), true, 'the whole second of the beat within the gap')
  t.equal(beats.recent('ann|tab-1', T0 + 1001 + GAP, GAP), false, 'a millisecond more: the second it fell in is not wholly within (the beat was 39.5 s ago, judged from its score)')
  t.equal(beats.recent('ann|tab-2', T0 + 2000, GAP), false, 'another tab of the contact')
  t.equal(beats.recent('bob|tab-1', T0 + 2000, GAP), false, 'another contact')
})

t.test('RecentBeats: 200 000 tabs noted are nearly all remembered, in about 24 bytes a tab; old ones make room', async (t) => {
  const beats = new RecentBeats(T0)
  const tabs = 200_000
  for (let i = 0; i < tabs; i += 1) {
    beats.recent(`contact-${i}|tab-${i}`, T0, GAP)
    beats.note(beats.lastA, beats.lastB, T0, GAP)
  }
  let remembered = 0
  for (let i = 0; i < tabs; i += 1) if (beats.recent(`contact-${i}|tab-${i}`, T0 + 1000, GAP)) remembered += 1
  t.ok(remembered >= tabs * 0.99, `${remembered} of ${tabs} remembered`)
  t.ok(beats.size <= tabs && beats.size >= tabs * 0.99, `${beats.size} entries in use`)
  // A gap later, as many other tabs: the first ones are past the gap, dropped as room is needed.
  for (let i = 0; i < tabs; i += 1) {
    beats.recent(`later-${i}|tab-${i}`, T0 + GAP + 2000, GAP)
    beats.note(beats.lastA, beats.lastB, T0 + GAP + 2000, GAP)
  }
  t.ok(beats.size <= tabs * 1.1, `${beats.size} entries in use after the old ones could go`)
  t.ok(beats.bytes <= tabs * 32, `${beats.bytes} bytes for ${tabs} tabs`)
  let later = 0
  for (let i = 0; i < tabs; i += 1) if (beats.recent(`later-${i}|tab-${i}`, T0 + GAP + 3000, GAP)) later += 1
  t.ok(later >= tabs * 0.99, `${later} of the later ones remembered`)
})

function beat(event: HeartbeatEvent, over: Partial<Heartbeat> = {}): Heartbeat {
  return { contactId: 'ann', clientId: 'acme', name: 'Ann', company: 'Acme', sid: 'tab-ann-0001', path: '/p', title: 'P', event, ...over }
}

async function commandCalls(redis: Redis, command: string): Promise<number> {
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.info('commandstats'))?.[1] ?? 0)
}

t.test('the Redis engine: a beat within the gap of its last costs one command; a late one, a hidden tab and a clock ahead are judged as before', async (t) => {
  const server = await startRedisServer(t)
  const clock = createClock(T0)
  const site = uniqueSite('recent-beats')
  const open = (now: () => number): ReturnType<typeof openRedisState> => openRedisState({ url: server.url, site, now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: 600_000, gapAfterMs: GAP })
  const state = await open(clock.now)
  t.teardown(() => state.close())
  const engine = state.presence
  const redis = engine.redis as unknown as Redis

  t.equal(await engine.heartbeat(beat('nav')), 'joined')
  clock.advance(10_000)
  const before = await commandCalls(redis, 'zscore')
  t.equal(await engine.heartbeat(beat('beat')), 'unchanged', 'the first beat: judged from the score')
  t.equal(await commandCalls(redis, 'zscore') - before, 1, 'which it read')
  for (let i = 0; i < 5; i += 1) {
    clock.advance(GAP - 1000)
    t.equal(await engine.heartbeat(beat('beat')), 'unchanged', `beat ${i + 2}, ${GAP - 1000} ms after the last`)
  }
  t.equal(await commandCalls(redis, 'zscore') - before, 1, 'the beats after it read no score')
  const [online] = (await engine.snapshot()).online
  t.equal(online?.lastSeen, clock.now(), 'and each moved the expiry')

  // Late: more than the gap after the last beat, judged from the score: a gap event.
  clock.advance(GAP + 1)
  t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
  const events = await state.eventLog.tail(100)
  t.strictSame(events.map((e) => e.type), ['join', 'gap'], 'the late beat appended its gap')

  // Hidden, then a beat within the gap of the last: the visible member is gone, the full script decides.
  clock.advance(1000)
  t.equal(await engine.heartbeat(beat('hidden')), 'updated')
  clock.advance(1000)
  t.equal(await engine.heartbeat(beat('beat')), 'updated', 'a beat of the hidden tab makes it visible again, as before')
  t.match((await engine.snapshot()).online, [{ contactId: 'ann', state: 'active', lastSeen: clock.now() }])

  // Another instance whose clock is 5 s ahead beats the tab: its expiry is later than this instance's next.
  const ahead = await open(() => clock.now() + 5000)
  t.teardown(() => ahead.close())
  clock.advance(1000)
  t.equal(await engine.heartbeat(beat('beat')), 'unchanged')
  t.equal(await ahead.presence.heartbeat(beat('beat')), 'unchanged')
  clock.advance(1000)
  t.equal(await engine.heartbeat(beat('beat')), 'unchanged', 'a beat that would lower the expiry: judged from the score, and applied')
  t.equal((await engine.snapshot()).online[0]?.lastSeen, clock.now(), 'the expiry is this beat\'s, as before')
})
