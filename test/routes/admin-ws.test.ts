import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, heartbeatUrl, uniqueSite, ensureConsent } from '../helpers/app.js'
import { connectDashboard, refusedUpgrade, type Dashboard, type Message } from '../helpers/ws.js'
import type { RedisPresenceEngine } from '../../src/presence/redis/redis-presence-engine.js'
import { snapshotPartCount, snapshotPartOf } from '../../src/presence/redis/snapshot-reader.js'
import type { SnapshotParts } from '../../src/presence/snapshot-parts.js'

async function beat(app: FastifyInstance, sub: string, sid: string, event: string, path = '/home', title = 'Home'): Promise<void> {
  const token = clientToken({ sub, name: `Name ${sub}` })
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid, event, path, title }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

const hasJoined = (id: string) => (m: Message) => m.joined?.some((p) => p.contactId === id) === true
const hasUpdated = (id: string) => (m: Message) => m.updated?.some((p) => p.contactId === id) === true
const hasLeft = (id: string) => (m: Message) => m.left?.some((l) => l.contactId === id) === true

t.test('refused before the upgrade: no token, bad token, client token, foreign Origin', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_ALLOWED_ORIGINS: 'https://crm.example.com' } })
  const none = await refusedUpgrade(app, '')
  t.equal(none.status, 401)
  t.match(none.body, { error: { code: 'invalid_token' } })
  t.equal((await refusedUpgrade(app, '?token=garbage')).status, 401)
  t.equal((await refusedUpgrade(app, `?token=${clientToken()}`)).status, 401, 'a client token is not an admin token')
  const foreign = await refusedUpgrade(app, `?token=${adminToken()}`, { origin: 'https://evil.example.net' })
  t.equal(foreign.status, 403)
  t.match(foreign.body, { error: { code: 'forbidden' } })
  const listed = await connectDashboard(app, adminToken(), { origin: 'https://crm.example.com' })
  await listed.waitFor((m) => m.type === 'snapshot')
  await listed.close()
  t.equal(app.hub.size, 0)
})

t.test('an upgrade to any other path is refused with 404 and runs nothing', async (t) => {
  const app = await buildTestApp(t)
  const token = clientToken()
  await ensureConsent(app, token)
  const heartbeat = await refusedUpgrade(app, heartbeatUrl({ token, sid: 'tab-aaaa-0001' }).replace('/cat_heartbeat', ''), {}, '/cat_heartbeat')
  t.equal(heartbeat.status, 404)
  t.match(heartbeat.body, { error: { code: 'not_found', message: /admin\/ws/ } })
  t.strictSame((await app.presence.snapshot()).online, [], 'the heartbeat route did not run')
  t.equal((await refusedUpgrade(app, '', {}, '/nowhere')).status, 404)
  const dashboard = await connectDashboard(app, adminToken())
  await dashboard.waitFor((m) => m.type === 'snapshot')
  await dashboard.close()
})

t.test('names, companies and pages in any script reach the snapshot as they were sent (memory and Redis engines)', async (t) => {
  const contact = { sub: 'zoë', name: 'Zoë Ångström 日本語', company: 'Société Générale ✓', clientId: 'client-1' }
  const page = { path: '/café/€/🙂', title: 'Überblick — 請求書 🙂' }
  for (const engine of ['memory', 'redis'] as const) {
    const site = uniqueSite('admin-ws-unicode')
    if (engine === 'redis') cleanRedisSite(t, site)
    const app = await buildTestApp(t, engine === 'redis' ? { site } : {})
    const token = clientToken(contact)
    await ensureConsent(app, token)
    const res = await app.inject(heartbeatUrl({ token, sid: 'tabunicode1', event: 'nav', ...page }))
    t.equal(res.statusCode, 204, engine)
    const dash = await connectDashboard(app, adminToken())
    const snapshot = await dash.waitFor((m) => m.type === 'snapshot')
    t.match(snapshot.online, [{ contactId: 'zoë', name: contact.name, company: contact.company, ...page }], engine)
    await dash.close()
  }
})

t.test('snapshot first, then seq-numbered diffs: joined, updated, left', async (t) => {
  const app = await buildTestApp(t)
  await beat(app, 'early', 'tabearly1', 'nav', '/already')
  const dash = await connectDashboard(app, adminToken())
  const snapshot = await dash.waitFor((m) => m.type === 'snapshot')
  t.equal(snapshot.seq, 1)
  t.match(snapshot.online, [{ contactId: 'early', path: '/already', state: 'active', tabs: 1 }])

  await beat(app, 'c1', 'tabc1aaaa', 'nav', '/one', 'One')
  const joined = await dash.waitFor(hasJoined('c1'))
  t.match(joined, { type: 'diff', seq: 2, joined: [{ contactId: 'c1', name: 'Name c1', path: '/one', title: 'One', state: 'active', tabs: 1 }], updated: [], left: [] })
  t.type(joined.at, 'number')

  await beat(app, 'c1', 'tabc1aaaa', 'nav', '/two', 'Two')
  t.match(await dash.waitFor(hasUpdated('c1')), { seq: 3, updated: [{ contactId: 'c1', path: '/two' }] })
  await beat(app, 'c1', 'tabc1aaaa', 'hidden')
  t.match(await dash.waitFor((m) => m.seq === 4), { updated: [{ contactId: 'c1', state: 'idle' }] })
  await beat(app, 'c1', 'tabc1aaaa', 'leave')
  t.match(await dash.waitFor(hasLeft('c1')), { seq: 5, left: [{ contactId: 'c1', reason: 'leave' }] })
  t.same(dash.messages.map((m) => m.seq), [1, 2, 3, 4, 5], 'seq rises by one per message')
  await dash.close()
})

t.test('a snapshot of hundreds of kilobytes arrives as one message, then diffs go on in seq', async (t) => {
  const app = await buildTestApp(t)
  const contacts = 2000
  await Promise.all(Array.from({ length: contacts }, (_, i) => app.presence.heartbeat({
    contactId: `big-${i}`, clientId: 'client-1', name: `Contact ${i} ${'x'.repeat(100)}`, company: 'Acme', sid: `tab-big-${i}`, path: `/page/${i}`, title: 'Title', event: 'nav',
  })))
  const dashboard = await connectDashboard(app, adminToken())
  const snapshot = await dashboard.waitFor((m) => m.type === 'snapshot')
  t.equal(snapshot.online?.length, contacts, 'every contact, in one message')
  t.ok(JSON.stringify(snapshot).length > 200_000, 'big enough to go as two fragments')
  await beat(app, 'late', 'tab-late-0001', 'nav')
  const diff = await dashboard.waitFor(hasJoined('late'))
  t.equal(diff.seq, snapshot.seq + 1)
  await dashboard.close()
})

t.test('a diff of hundreds of kilobytes arrives as one message, in seq with the next', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_DIFF_INTERVAL_MS: '300' } })
  const dashboard = await connectDashboard(app, adminToken())
  const snapshot = await dashboard.waitFor((m) => m.type === 'snapshot')
  const contacts = 1500
  await Promise.all(Array.from({ length: contacts }, (_, i) => app.presence.heartbeat({
    contactId: `wave-${i}`, clientId: 'client-1', name: `Contact ${i} ${'x'.repeat(100)}`, company: 'Acme', sid: `tab-wave-${i}`, path: `/page/${i}`, title: 'Title', event: 'nav',
  })))
  const diff = await dashboard.waitFor((m) => m.type === 'diff')
  t.equal(diff.joined?.length, contacts, 'every join in one diff')
  t.ok(JSON.stringify(diff).length > 200_000, 'long enough to go as fragments')
  t.equal(diff.seq, snapshot.seq + 1)
  await beat(app, 'after-wave', 'tab-after-wave', 'nav')
  const next = await dashboard.waitFor(hasJoined('after-wave'))
  t.equal(next.seq, diff.seq + 1)
  await dashboard.close()
})

t.test('a join and a leave of one contact inside one window cancel out', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_DIFF_INTERVAL_MS: '300' } })
  const dash = await connectDashboard(app, adminToken())
  await dash.waitFor((m) => m.type === 'snapshot')
  await beat(app, 'flicker', 'tabflick1', 'nav')
  await beat(app, 'stays', 'tabstays1', 'nav')
  await beat(app, 'flicker', 'tabflick1', 'leave')
  const diff = await dash.waitFor((m) => m.type === 'diff')
  t.same(diff.joined?.map((p) => p.contactId), ['stays'])
  t.same(diff.left, [], 'the flicker is not reported at all')
  await beat(app, 'marker', 'tabmark01', 'nav')
  await dash.waitFor(hasJoined('marker'))
  t.notOk(dash.messages.some((m) => hasJoined('flicker')(m) || hasLeft('flicker')(m)))
  await dash.close()
})

t.test('resync answers with a new snapshot; an unknown message closes with 1008', async (t) => {
  const app = await buildTestApp(t)
  const dash = await connectDashboard(app, adminToken())
  await dash.waitFor((m) => m.type === 'snapshot')
  await beat(app, 'c2', 'tabc2aaaa', 'nav')
  await dash.waitFor(hasJoined('c2'))
  dash.socket.send(JSON.stringify({ type: 'resync' }))
  const again = await dash.waitFor((m) => m.type === 'snapshot' && m.seq === 3)
  t.match(again.online, [{ contactId: 'c2' }])
  dash.socket.send('{"type":"explode"}')
  t.equal((await dash.closed).code, 1008)
})

t.test('a dashboard that does not read is closed with 1013 instead of growing memory', async (t) => {
  const app = await buildTestApp(t, { sendBufferBytes: 64 * 1024, env: { CAT_DIFF_INTERVAL_MS: '0' } })
  const dash = await connectDashboard(app, adminToken())
  await dash.waitFor((m) => m.type === 'snapshot')
  const raw = (dash.socket as unknown as { _socket: import('node:net').Socket })._socket
  raw.pause()
  const title = 'x'.repeat(500)
  // Enough diffs to fill the kernel's socket buffers and then ours.
  for (let i = 0; i < 40_000 && app.hub.size > 0; i += 1) {
    await app.presence.heartbeat({ contactId: `slow-${i}`, clientId: 'k', name: 'n', company: 'c', sid: 'tabslow01', path: '/p', title, event: 'nav' })
    if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(app.hub.size, 0, 'the hub let go of the socket')
  raw.resume()
  t.equal((await dash.closed).code, 1013)
})

t.test('Redis: after the pub/sub connection drops, or a gap in the feed, the dashboard gets a new snapshot', async (t) => {
  const site = uniqueSite('ws')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { site, instanceId: `${site}-a` })
  const engine = app.presence as RedisPresenceEngine
  const dash: Dashboard = await connectDashboard(app, adminToken())
  await dash.waitFor((m) => m.type === 'snapshot')
  await beat(app, 'r1', 'tabr1aaaa', 'nav')
  await dash.waitFor(hasJoined('r1'))

  const clients = await engine.redis.client('LIST') as string
  const line = clients.split('\n').find((l) => l.includes(`name=${engine.subscriberName} `))
  const id = /id=(\d+)/.exec(line ?? '')?.[1]
  t.ok(id, 'found the subscriber connection')
  await engine.redis.client('KILL', 'ID', id as string)
  const afterDrop = await dash.waitFor((m) => m.type === 'snapshot' && m.seq > 1, 5000)
  t.match(afterDrop.online, [{ contactId: 'r1' }])

  // Someone else's lost message: the feed counter skips one, and the next change shows the gap.
  const count = dash.messages.length
  await engine.redis.incr(engine.partitionOf('r2').seq)
  await beat(app, 'r2', 'tabr2aaaa', 'nav')
  const afterGap = await dash.waitFor((m) => m.type === 'snapshot', 5000, count)
  t.match(afterGap.online?.map((p) => p.contactId).sort(), ['r1', 'r2'])
  await dash.close()
})

/** `count` contact ids (`prefix-…`) whose tabs are in snapshot part `part`. */
function idsInPart(prefix: string, part: number, count: number, partitions: number): string[] {
  const ids: string[] = []
  for (let i = 0; ids.length < count; i += 1) {
    if (snapshotPartOf(`${prefix}-${i}`, partitions) === part) ids.push(`${prefix}-${i}`)
  }
  return ids
}

t.test('Redis: the snapshot goes out part by part, and what changes while it is read reaches the dashboard once', async (t) => {
  const site = uniqueSite('ws-parts')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { site, instanceId: `${site}-a`, env: { CAT_DIFF_INTERVAL_MS: '20' } })
  const engine = app.presence as RedisPresenceEngine
  const partitions = engine.partitions.length
  const lastPart = snapshotPartCount(partitions) - 1
  const [firstA, firstB] = idsInPart('first', 0, 2, partitions) as [string, string]
  const [lastA, lastB, lastC] = idsInPart('last', lastPart, 3, partitions) as [string, string, string]
  for (const id of [firstA, firstB, lastA, lastB]) await beat(app, id, `tab-${id}`, 'nav', '/before')

  // The parts are handed over as the engine reads them, with a stop before the first and after it.
  const gate = (): { open: () => void; opened: Promise<void> } => {
    let open!: () => void
    const opened = new Promise<void>((resolve) => {
      open = resolve
    })
    return { open, opened }
  }
  const beforeFirst = gate()
  const afterFirst = gate()
  const readParts = engine.snapshotParts
  engine.snapshotParts = (): SnapshotParts => {
    const reader = readParts()
    return {
      parts: (async function* () {
        await beforeFirst.opened
        let k = 0
        for await (const part of reader.parts) {
          yield part
          if (k++ === 0) await afterFirst.opened
        }
      })(),
      partitions: reader.partitions,
      position: (contactId) => reader.position(contactId),
      lowest: (partition) => reader.lowest(partition),
      highest: (partition) => reader.highest(partition),
    }
  }
  const dash = await connectDashboard(app, adminToken())
  const raw = (dash.socket as unknown as { _socket: import('node:net').Socket })._socket
  const upgradeBytes = raw.bytesRead
  beforeFirst.open()
  for (let waited = 0; raw.bytesRead === upgradeBytes && waited < 3000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5))
  t.ok(raw.bytesRead > upgradeBytes, 'the first part arrived while the rest is still to be read')
  t.equal(dash.messages.length, 0, 'as a fragment of the snapshot message, not yet whole')

  // While the other parts are read: changes to contacts of the part sent, and of the last part (not read yet).
  await beat(app, firstA, `tab-${firstA}`, 'nav', '/moved')
  await beat(app, firstB, `tab-${firstB}`, 'leave')
  await beat(app, lastA, `tab-${lastA}`, 'nav', '/moved')
  await beat(app, lastB, `tab-${lastB}`, 'leave')
  await beat(app, lastC, `tab-${lastC}`, 'nav', '/new')
  afterFirst.open()

  const snapshot = await dash.waitFor((m) => m.type === 'snapshot')
  const online = new Map(snapshot.online?.map((p) => [p.contactId as string, p]))
  t.strictSame([...online.keys()].sort(), [firstA, firstB, lastA, lastC].sort(), 'the first part as it was read, the last as it was later')
  t.equal(online.get(firstA)?.path, '/before')
  t.equal(online.get(lastA)?.path, '/moved')
  // A marker after everything: every diff about the changes above has arrived before it.
  await beat(app, 'marker', 'tab-marker', 'nav')
  await dash.waitFor(hasJoined('marker'))
  // The dashboard applies the diffs as the contract says; a join of someone already shown, or
  // an update or leave of someone not shown, would be a change sent twice.
  for (const m of dash.messages.filter((m) => m.type === 'diff')) {
    for (const p of m.joined ?? []) {
      t.notOk(online.has(p.contactId as string), `joined ${p.contactId as string}: not shown yet`)
      online.set(p.contactId as string, p)
    }
    for (const p of m.updated ?? []) {
      t.ok(online.has(p.contactId as string), `updated ${p.contactId as string}: shown`)
      online.set(p.contactId as string, p)
    }
    for (const l of m.left ?? []) t.ok(online.delete(l.contactId), `left ${l.contactId}: shown`)
  }
  const now = (await engine.snapshot()).online
  t.strictSame([...online.keys()].sort(), now.map((p) => p.contactId).sort(), 'the dashboard shows who is online')
  t.equal(online.get(firstA)?.path, '/moved', 'the change to a contact already sent came as a diff')
  const changed = dash.messages.filter((m) => m.type === 'diff').flatMap((m) => [...(m.joined ?? []), ...(m.updated ?? []), ...(m.left ?? [])].map((c) => c.contactId as string))
  t.notOk(changed.some((id) => id === lastA || id === lastB || id === lastC), 'changes already in the snapshot are not sent again')
  await dash.close()
})
