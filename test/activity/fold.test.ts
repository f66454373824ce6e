import t from 'tap'
import { foldEvents } from '../../src/activity/fold.js'
import type { ActivityEvent } from '../../src/activity/event-log/event-log.js'

const T0 = 1_800_000_000_000
let seq = 0
function ev(type: ActivityEvent['type'], s: number, over: Partial<ActivityEvent> = {}): ActivityEvent {
  seq += 1
  return { id: `${String(T0 + s * 1000).padStart(15, '0')}-${String(seq).padStart(8, '0')}`, type, contactId: 'c', clientId: 'k', sid: 'tab1', path: '/', title: '', at: T0 + s * 1000, ...over }
}

t.test('a scripted visit: three pages, a hidden stretch, a leave', async (t) => {
  const { sessions, pages } = foldEvents([
    ev('join', 0, { path: '/a', name: 'Ann', company: 'Acme' }),
    ev('nav', 10, { path: '/b' }),
    ev('nav', 30, { path: '/c' }),
    ev('hidden', 50),
    ev('visible', 110),
    ev('leave', 130),
    ev('end', 130, { reason: 'leave' }),
  ])
  t.equal(sessions.length, 1)
  t.match(sessions[0], { name: 'Ann', company: 'Acme', startedAt: T0, endedAt: T0 + 130_000, visibleMs: 70_000, endReason: 'leave', pagesCount: 3, visibleSince: null })
  t.same(pages.map((p) => [p.path, p.visibleMs, p.endedAt]), [
    ['/a', 10_000, T0 + 10_000],
    ['/b', 20_000, T0 + 30_000],
    ['/c', 40_000, T0 + 130_000],
  ])
})

t.test('a gap (sleeping laptop) credits nothing between the beats around it', async (t) => {
  const { sessions, pages } = foldEvents([ev('join', 0), ev('gap', 100, { from: T0 + 30_000 }), ev('leave', 120), ev('end', 120, { reason: 'leave' })])
  t.equal(sessions[0]?.visibleMs, 50_000)
  t.equal(pages[0]?.visibleMs, 50_000)
})

t.test('an expiry ends the session at the last time the contact was seen', async (t) => {
  const { sessions } = foldEvents([ev('join', 0), ev('end', 45, { reason: 'timeout' })])
  t.match(sessions[0], { endedAt: T0 + 45_000, visibleMs: 45_000, endReason: 'timeout' })
})

t.test('two tabs: the session is visible while either is; each page while its own tab is', async (t) => {
  const { sessions, pages } = foldEvents([
    ev('join', 0, { path: '/a' }),
    ev('nav', 10, { sid: 'tab2', path: '/x' }),
    ev('hidden', 20),
    ev('hidden', 40, { sid: 'tab2' }),
    ev('visible', 60, { sid: 'tab2' }),
    ev('end', 100, { reason: 'timeout' }),
  ])
  t.equal(sessions[0]?.visibleMs, 80_000)
  t.equal(sessions[0]?.pagesCount, 2)
  t.same(pages.map((p) => [p.path, p.visibleMs]), [['/a', 20_000], ['/x', 70_000]])
})

t.test('an open session keeps its running visible period for the reader to finish', async (t) => {
  const { sessions, pages } = foldEvents([ev('join', 0), ev('nav', 10, { path: '/b' })])
  t.match(sessions[0], { endedAt: null, visibleMs: 0, visibleSince: T0, lastEventAt: T0 + 10_000 })
  t.match(pages[1], { endedAt: null, visibleSince: T0 + 10_000 })
})

t.test('events before their join wait; a join while a session is open ends it where it was last heard of', async (t) => {
  t.same(foldEvents([ev('nav', 5), ev('hidden', 6)]), { sessions: [], pages: [], state: null }, 'orphans make no rows')
  const { sessions } = foldEvents([ev('join', 0), ev('nav', 20, { path: '/b' }), ev('join', 500)])
  t.equal(sessions.length, 2)
  t.match(sessions[0], { endedAt: T0 + 20_000, endReason: 'timeout', visibleMs: 20_000 })
  t.match(sessions[1], { startedAt: T0 + 500_000, endedAt: null })
})
