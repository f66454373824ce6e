import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, heartbeatUrl, uniqueSite, ensureConsent } from '../helpers/app.js'
import { connectDashboard, type Message } from '../helpers/ws.js'

const hasJoined = (id: string) => (m: Message) => m.joined?.some((p) => p.contactId === id) === true
const leftOf = (id: string) => (m: Message) => m.left?.filter((l) => l.contactId === id) ?? []

async function beat(app: FastifyInstance, sub: string, sid: string, event: string, nowMs: number): Promise<void> {
  const token = clientToken({ sub }, nowMs)
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid, event, path: `/p/${sub}` }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

t.test('three instances on one Redis: a join on A reaches C; a timeout leave is emitted once, also with A dead', async (t) => {
  const site = uniqueSite('cluster')
  cleanRedisSite(t, site)
  const clock = createClock(Date.now())
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => buildTestApp(t, { site, now: clock.now, instanceId: `${site}-${name}` }))) as [FastifyInstance, FastifyInstance, FastifyInstance]
  const token = adminToken({}, clock.now())
  const dashboards = await Promise.all([a, b, c].map((app) => connectDashboard(app, token)))
  await Promise.all(dashboards.map((d) => d.waitFor((m) => m.type === 'snapshot')))
  const [onA, onB, onC] = dashboards as [typeof dashboards[0], typeof dashboards[0], typeof dashboards[0]]

  await beat(a, 'visitor', 'tabvisit1', 'nav', clock.now())
  const joined = await onC.waitFor(hasJoined('visitor'))
  t.match(joined.joined, [{ contactId: 'visitor', path: '/p/visitor', tabs: 1 }], 'a heartbeat on A is a joined on C')
  await onB.waitFor(hasJoined('visitor'))
  await onA.waitFor(hasJoined('visitor'))

  // A dies (its dashboard with it); the visitor stops beating; the others sweep at the same time.
  await a.close()
  clock.advance(75_000 + 1)
  const removed = await Promise.all([b.presence.sweep(), c.presence.sweep(), b.presence.sweep(), c.presence.sweep()])
  t.equal(removed.reduce((x, y) => x + y, 0), 1, 'exactly one sweeper call claimed the expired tab')

  // A later change is the marker: once it has arrived, anything the sweep sent has arrived too.
  await beat(b, 'marker', 'tabmarker', 'nav', clock.now())
  for (const [label, dash] of [['B', onB], ['C', onC]] as const) {
    await dash.waitFor(hasJoined('marker'))
    const lefts = dash.messages.flatMap(leftOf('visitor'))
    t.equal(lefts.length, 1, `the dashboard on ${label} saw exactly one left`)
    t.match(lefts[0], { contactId: 'visitor', reason: 'timeout', at: clock.now() - 75_000 - 1 })
  }
  const ends = (await b.eventLog.tail(100)).filter((e) => e.type === 'end' && e.contactId === 'visitor')
  t.equal(ends.length, 1, 'one end event in the stream for the activity log')
  t.match(ends[0], { reason: 'timeout', sid: 'tabvisit1', clientId: 'client-1' })
  await Promise.all([onB.close(), onC.close()])
})

t.test('a second tab on another instance is an update, and a leave on a third ends nothing while a tab remains', async (t) => {
  const site = uniqueSite('tabs')
  cleanRedisSite(t, site)
  const clock = createClock(Date.now())
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => buildTestApp(t, { site, now: clock.now, instanceId: `${site}-${name}` }))) as [FastifyInstance, FastifyInstance, FastifyInstance]
  const dash = await connectDashboard(c, adminToken({}, clock.now()))
  await dash.waitFor((m) => m.type === 'snapshot')
  await beat(a, 'multi', 'tabmulti1', 'nav', clock.now())
  await dash.waitFor(hasJoined('multi'))
  await beat(b, 'multi', 'tabmulti2', 'nav', clock.now())
  const second = await dash.waitFor((m) => m.updated?.some((p) => p.contactId === 'multi' && p.tabs === 2) === true)
  t.same(second.joined, [], 'not a second joined')
  await beat(c, 'multi', 'tabmulti1', 'leave', clock.now())
  await dash.waitFor((m) => m.updated?.some((p) => p.contactId === 'multi' && p.tabs === 1) === true)
  t.same(dash.messages.flatMap(leftOf('multi')), [])
  const online = await c.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken({}, clock.now())}` } })
  t.match(online.json(), { online: [{ contactId: 'multi', tabs: 1 }] })
  await dash.close()
})
