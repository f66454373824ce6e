/**
 * Per-staff visibility: an admin token's `clients` claim limits what it sees to the contacts
 * of those clients, everywhere: the dashboard's snapshot and diffs across instances (a contact
 * outside the set never appears, not even in `left`), /admin/api/online, the activity, export
 * and erase endpoints (404, as for a contact that does not exist) and the online statistics.
 * Real Redis for three instances, real MariaDB and SQLite for the activity log.
 */
import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { SECRET, adminToken, buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite } from '../helpers/app.js'
import { connectDashboard, wsBase, type Dashboard, type Message } from '../helpers/ws.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'

const T0 = 1_800_000_000_000
type Clock = ReturnType<typeof createClock>

/** Contacts by client: two for acme, one for globex, one for initech (which no restricted token lists). */
const CLIENT_OF: Record<string, string> = { ann: 'acme', abe: 'acme', gus: 'globex', ivy: 'initech', amy: 'acme', gil: 'globex' }

async function beat(app: FastifyInstance, clock: Clock, sub: string, event: string, path = `/clients/${sub}`): Promise<void> {
  const token = clientToken({ sub, clientId: CLIENT_OF[sub], name: `Name ${sub}` }, clock.now())
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid: `tab-${sub}-1`, event, path }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

/** Every contact a dashboard's messages named, in its snapshots, joins, updates and leaves. */
function named(messages: readonly Message[]): { snapshot: string[]; joined: string[]; updated: string[]; left: string[] } {
  const ids = { snapshot: [] as string[], joined: [] as string[], updated: [] as string[], left: [] as string[] }
  for (const m of messages) {
    ids.snapshot.push(...(m.online ?? []).map((p) => String(p.contactId)))
    ids.joined.push(...(m.joined ?? []).map((p) => String(p.contactId)))
    ids.updated.push(...(m.updated ?? []).map((p) => String(p.contactId)))
    ids.left.push(...(m.left ?? []).map((l) => l.contactId))
  }
  for (const list of Object.values(ids)) list.sort()
  return ids
}

t.test('three instances: dashboards of different clients see exactly their own contacts\' joins, updates and leaves', async (t) => {
  const site = uniqueSite('visibility')
  cleanRedisSite(t, site)
  const clock = createClock(Date.now())
  const [a, b, c] = (await Promise.all(['a', 'b', 'c'].map((name) => buildTestApp(t, { site, now: clock.now, instanceId: `${site}-${name}` })))) as [FastifyInstance, FastifyInstance, FastifyInstance]
  // Online before any dashboard opens: in the snapshots.
  await beat(a, clock, 'ann', 'nav')
  await beat(b, clock, 'gus', 'nav')
  await beat(c, clock, 'ivy', 'nav')

  const acmeToken = adminToken({ sub: 'staff-acme', role: 'staff', clients: ['acme'] }, clock.now())
  const dashboards = {
    acmeOnA: await connectDashboard(a, acmeToken),
    acmeOnC: await connectDashboard(c, acmeToken),
    globexOnB: await connectDashboard(b, adminToken({ sub: 'staff-globex', clients: ['globex'] }, clock.now())),
    bothOnC: await connectDashboard(c, adminToken({ sub: 'staff-both', clients: ['globex', 'acme'] }, clock.now())),
    nobodyOnB: await connectDashboard(b, adminToken({ sub: 'staff-none', clients: [] }, clock.now())),
    allOnA: await connectDashboard(a, adminToken({ sub: 'staff-all' }, clock.now())),
  }
  await Promise.all(Object.values(dashboards).map((d) => d.waitFor((m) => m.type === 'snapshot')))

  // Changes a diff window would fold together (a join and a leave of one contact are nothing;
  // an update and a leave, a leave) are sent a step apart: each step waits until the
  // dashboards that see it have it.
  const sees = (d: Dashboard, kind: 'joined' | 'updated' | 'left', id: string): Promise<Message> => d.waitFor((m) => (m[kind] ?? []).some((p) => p.contactId === id))
  const { acmeOnA, acmeOnC, globexOnB, bothOnC, allOnA } = dashboards
  const acmeSide = [acmeOnA, acmeOnC, bothOnC, allOnA]
  const globexSide = [globexOnB, bothOnC, allOnA]
  const step = async (seen: [Dashboard[], 'joined' | 'updated' | 'left', string][]): Promise<void> => {
    await Promise.all(seen.flatMap(([ds, kind, id]) => ds.map((d) => sees(d, kind, id))))
  }

  // Joins and updates (a navigation), each on another instance.
  await beat(b, clock, 'abe', 'nav')
  await beat(c, clock, 'gil', 'nav')
  await beat(a, clock, 'ivy', 'nav', '/clients/invoices')
  await beat(c, clock, 'ann', 'nav', '/clients/invoices')
  await beat(a, clock, 'gus', 'nav', '/clients/tickets')
  await step([[acmeSide, 'joined', 'abe'], [acmeSide, 'updated', 'ann'], [globexSide, 'joined', 'gil'], [globexSide, 'updated', 'gus'], [[allOnA], 'updated', 'ivy']])
  // Leaves: pages closed.
  await beat(b, clock, 'abe', 'leave')
  await beat(a, clock, 'gil', 'leave')
  await beat(b, clock, 'ivy', 'leave')
  await step([[acmeSide, 'left', 'abe'], [globexSide, 'left', 'gil'], [[allOnA], 'left', 'ivy']])
  // A join, then the rest time out.
  clock.advance(75_001)
  await beat(a, clock, 'amy', 'nav')
  await step([[acmeSide, 'joined', 'amy']])
  await Promise.all([a.presence.sweep(), b.presence.sweep(), c.presence.sweep()])
  await step([[acmeSide, 'left', 'ann'], [globexSide, 'left', 'gus']])
  // Markers, one per client: once a dashboard has its marker, everything before it has arrived.
  await beat(c, clock, 'amy', 'nav', '/clients/marker')
  await beat(a, clock, 'gil', 'nav', '/clients/marker')
  await beat(b, clock, 'ivy', 'nav', '/clients/marker')
  const marker = (id: string) => (m: Message) => [...(m.joined ?? []), ...(m.updated ?? [])].some((p) => p.contactId === id && p.path === '/clients/marker')
  await acmeOnA.waitFor(marker('amy'))
  await acmeOnC.waitFor(marker('amy'))
  await globexOnB.waitFor(marker('gil'))
  await bothOnC.waitFor(marker('amy'))
  await bothOnC.waitFor(marker('gil'))
  await allOnA.waitFor(marker('ivy'))
  await allOnA.waitFor(marker('amy'))
  await allOnA.waitFor(marker('gil'))

  const acme = { snapshot: ['ann'], joined: ['abe', 'amy'], updated: ['amy', 'ann'], left: ['abe', 'ann'] }
  t.same(named(dashboards.acmeOnA.messages), acme, 'acme on A: acme\'s contacts, each change of theirs, no other')
  t.same(named(dashboards.acmeOnC.messages), acme, 'acme on C: the same')
  t.same(named(dashboards.globexOnB.messages), { snapshot: ['gus'], joined: ['gil', 'gil'], updated: ['gus'], left: ['gil', 'gus'] }, 'globex on B')
  const both = named(dashboards.bothOnC.messages)
  t.same(both.left, ['abe', 'ann', 'gil', 'gus'], 'acme and globex: their leaves')
  t.notOk([...both.snapshot, ...both.joined, ...both.updated, ...both.left].includes('ivy'), 'and never initech\'s contact')
  const all = named(dashboards.allOnA.messages)
  t.ok(all.joined.includes('ivy') && all.left.includes('ivy') && all.left.includes('ann'), 'without the claim: every client\'s contacts')
  // The empty list sees nobody: after every marker, it has had only its empty snapshot.
  t.same(named(dashboards.nobodyOnB.messages), { snapshot: [], joined: [], updated: [], left: [] }, 'an empty clients claim sees nobody')
  t.same(dashboards.nobodyOnB.messages.map((m) => m.type), ['snapshot'], 'and is sent no diff at all')
  const reason = (d: Dashboard, id: string): string[] => d.messages.flatMap((m) => m.left ?? []).filter((l) => l.contactId === id).map((l) => l.reason)
  t.same(reason(dashboards.acmeOnA, 'ann'), ['timeout'], 'a time-out is a left with its reason')
  t.same(Object.keys(dashboards.acmeOnA.messages.flatMap((m) => m.left ?? [])[0] ?? {}).sort(), ['at', 'contactId', 'reason'], 'a left carries the contract\'s fields only')
  await Promise.all(Object.values(dashboards).map((d) => d.close()))
})

async function databaseEnv(t: Test, target: 'mysql' | 'sqlite'): Promise<Record<string, string>> {
  return target === 'mysql' ? { DATABASE_URL: await createTestMysqlDatabase(t, 'visibility') } : { CAT_DATA_DIR: createTestDataDir(t, 'visibility') }
}

async function drain(app: FastifyInstance): Promise<void> {
  while ((await app.activityWriter.writeOnce(0)) > 0);
}

for (const target of ['mysql', 'sqlite'] as const) {
  t.test(`${target}: REST reads see only the token's clients; another client's contact is 404`, async (t) => {
    const clock = createClock(T0)
    const app = await buildTestApp(t, { now: clock.now, env: await databaseEnv(t, target) })
    const as = (token: string) => async (method: 'GET' | 'DELETE', url: string) => {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` } })
      return { status: res.statusCode, body: res.body === '' ? undefined : (res.json() as Record<string, unknown>) }
    }
    const acme = as(adminToken({ sub: 'staff-acme', clients: ['acme'] }, T0))
    const all = as(adminToken({ sub: 'staff-all' }, T0))
    await beat(app, clock, 'ann', 'nav')
    await beat(app, clock, 'gus', 'nav')
    await app.activityJobs.sampleNow()
    clock.advance(60_000)
    await beat(app, clock, 'abe', 'nav')
    await app.activityJobs.sampleNow()
    clock.advance(60_000)
    await beat(app, clock, 'gus', 'leave')
    await beat(app, clock, 'ivy', 'nav')
    await app.activityJobs.sampleNow()
    await drain(app)

    const online = await acme('GET', '/admin/api/online')
    t.same((online.body?.online as { contactId: string }[]).map((p) => p.contactId).sort(), ['abe', 'ann'], '/admin/api/online: acme\'s contacts only')
    t.equal(((await all('GET', '/admin/api/online')).body?.online as unknown[]).length, 3, 'every contact without the claim')

    const own = await acme('GET', '/admin/api/contacts/ann/activity')
    t.equal(own.status, 200)
    t.match(own.body, { sessions: [{ contactId: 'ann', clientId: 'acme' }] }, 'an own contact\'s activity')
    const notFound = { error: { code: 'not_found', message: String } }
    for (const url of ['/admin/api/contacts/gus/activity', '/admin/api/contacts/gus/export', '/admin/api/clients/globex/activity', '/admin/api/contacts/nobody/activity']) {
      const res = await acme('GET', url)
      t.equal(res.status, 404, `${url}: 404`)
      t.match(res.body, notFound)
    }
    t.equal((await all('GET', '/admin/api/contacts/gus/activity')).status, 200, 'the same read without the claim: 200')
    t.equal((await acme('GET', '/admin/api/clients/acme/activity')).status, 200)
    t.match((await acme('GET', '/admin/api/contacts/abe/export')).body, { contactId: 'abe', presence: { contactId: 'abe' }, consents: [{ decision: 'granted' }] }, 'an own contact\'s export')

    t.equal((await acme('DELETE', '/admin/api/contacts/gus')).status, 404, 'erasing another client\'s contact: 404')
    t.match((await all('GET', '/admin/api/contacts/gus/activity')).body, { sessions: [{ contactId: 'gus' }] }, 'and nothing was erased')

    const stats = await acme('GET', '/admin/api/stats/online?range=1h')
    t.same(stats.body, { points: [{ t: T0, online: 1 }, { t: T0 + 60_000, online: 2 }, { t: T0 + 120_000, online: 2 }] }, 'the online count over acme\'s contacts only')
    t.same((await all('GET', '/admin/api/stats/online?range=1h')).body, { points: [{ t: T0, online: 2 }, { t: T0 + 60_000, online: 3 }, { t: T0 + 120_000, online: 3 }] }, 'and over everyone without the claim')
    const globex = as(adminToken({ sub: 'staff-globex', clients: ['globex'] }, T0))
    t.same((await globex('GET', '/admin/api/stats/online?range=1h')).body, { points: [{ t: T0, online: 1 }, { t: T0 + 60_000, online: 1 }, { t: T0 + 120_000, online: 0 }] }, 'globex: gus until he left')
    t.equal((await acme('DELETE', '/admin/api/contacts/abe')).status, 204, 'an own contact can be erased')
  })
}

t.test('a token whose clients claim is changed by one byte is refused', async (t) => {
  const app = await buildTestApp(t)
  const token = adminToken({ clients: ['acme'] })
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const widened = Buffer.from(Buffer.from(payload, 'base64url').toString('utf8').replace('"acme"', '"acmf"')).toString('base64url')
  t.not(widened, payload)
  for (const forged of [`${header}.${widened}.${signature}`]) {
    const res = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${forged}` } })
    t.equal(res.statusCode, 401)
    t.match(res.json(), { error: { code: 'invalid_token', message: /signature/ } })
  }
  const bad = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminTokenWithClaims({ clients: 'acme' })}` } })
  t.equal(bad.statusCode, 401, 'a clients claim that is not an array: 401')
  t.match(bad.json(), { error: { message: /clients must be an array/ } })
})

t.test('a token with 10 000 clients works on the WebSocket and REST, its snapshot and diffs filtered', async (t) => {
  const clock = createClock(Date.now())
  const app = await buildTestApp(t, { now: clock.now })
  const clients = Array.from({ length: 10_000 }, (_, i) => String(100_000 + i * 7))
  clients.push('acme')
  const token = adminToken({ clients }, clock.now())
  t.ok(token.length > 100_000, `the token is ${token.length} characters`)
  await beat(app, clock, 'ann', 'nav')
  await beat(app, clock, 'gus', 'nav')
  const base = (await wsBase(app)).replace(/^ws:/, 'http:')
  const res = await fetch(`${base}/admin/api/online`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200, 'over HTTP, in the Authorization header')
  t.same(((await res.json()) as { online: { contactId: string }[] }).online.map((p) => p.contactId), ['ann'])
  const dash = await connectDashboard(app, token)
  const snapshot = await dash.waitFor((m) => m.type === 'snapshot')
  t.same(snapshot.online?.map((p) => p.contactId), ['ann'], 'over the WebSocket, the token in its URL: the snapshot')
  await beat(app, clock, 'gil', 'nav')
  await beat(app, clock, 'abe', 'nav')
  const joined = await dash.waitFor((m) => (m.joined ?? []).length > 0)
  t.same(joined.joined?.map((p) => p.contactId), ['abe'], 'and the diffs')
  await dash.close()
})

/** An admin token with claims as given, however wrong, signed with the tests' secret. */
function adminTokenWithClaims(extra: Record<string, unknown>): string {
  const token = adminToken()
  const [header, payload] = token.split('.') as [string, string]
  const claims = { ...(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>), ...extra }
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  return resign(`${header}.${body}`)
}

function resign(signingInput: string): string {
  return `${signingInput}.${createHmac('sha256', SECRET).update(signingInput).digest('base64url')}`
}
