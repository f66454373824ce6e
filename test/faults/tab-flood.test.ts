/**
 * Fault probe: one client token opens thousands of tabs (a fresh `sid` per heartbeat) while an
 * innocent contact's heartbeats are timed. Tabs per contact are bounded
 * (CAT_MAX_TABS_PER_CONTACT, 32 by default): a new tab beyond the bound is refused with 429
 * and Retry-After, so the flood cannot make every heartbeat of the contact, or every sweep,
 * walk thousands of tabs. Both engines; the Redis one on a private redis-server, so a flood
 * that gets through cannot stall anyone else's Redis.
 */
import t from 'tap'
import { adminToken, buildTestApp, clientToken, uniqueSite } from '../helpers/app.js'
import { wsBase } from '../helpers/ws.js'
import { grantConsent, percentile, printFigures, rssMiB, runLoad, startRedisServer } from '../helpers/faults.js'
import { Pool } from 'undici'

const MAX_TABS = 32
const FLOOD_TABS = 2000

for (const engine of ['memory', 'redis'] as const) {
  t.test(`${engine}: a tab flood of one contact is refused beyond ${MAX_TABS} tabs; another contact keeps its 204s`, async (t) => {
    const redisEnv = engine === 'redis' ? { REDIS_URL: (await startRedisServer(t)).url, CAT_SITE: uniqueSite('flood') } : {}
    const app = await buildTestApp(t, { env: { ...redisEnv, CAT_MAX_TABS_PER_CONTACT: String(MAX_TABS) } })
    const origin = (await wsBase(app)).replace('ws:', 'http:')
    const flooder = clientToken({ sub: 'flooder', clientId: 'client-flood' })
    const innocent = clientToken({ sub: 'innocent', clientId: 'client-other' })
    await grantConsent(origin, flooder)
    await grantConsent(origin, innocent)
    const rssBefore = rssMiB()

    let flooding = true
    const flood = runLoad({
      origin,
      maxRequests: FLOOD_TABS,
      durationMs: 8000,
      concurrency: 4,
      request: (i) => ({ path: `/cat_heartbeat?token=${flooder}&sid=floodtab${String(i).padStart(6, '0')}&event=nav&path=/f/${i}` }),
    }).finally(() => (flooding = false))
    const innocentLoad = runLoad({
      origin,
      maxRequests: 2000,
      durationMs: 10_000,
      concurrency: 1,
      gapMs: 10,
      stop: () => !flooding,
      request: (i) => ({ path: `/cat_heartbeat?token=${innocent}&sid=innocenttab1&event=${i === 0 ? 'nav' : 'beat'}&path=/home` }),
    })
    const [floodResult, innocentResult] = await Promise.all([flood, innocentLoad])
    const rssAfter = rssMiB()

    const pool = new Pool(origin, { connections: 1 })
    t.teardown(() => pool.close())
    const online = await pool.request({ method: 'GET', path: '/admin/api/online', headers: { authorization: `Bearer ${adminToken()}` } })
    const onlineBody = (await online.body.json()) as { online: { contactId: string; tabs: number }[] }
    const flooderTabs = onlineBody.online.find((p) => p.contactId === 'flooder')?.tabs ?? 0
    const all = [...floodResult.sent, ...innocentResult.sent]
    const refused = floodResult.sent.filter((s) => s.status === 429)

    printFigures(t, `tab-flood-${engine}`, {
      floodRequests: floodResult.sent.length,
      floodAccepted: floodResult.statuses[204] ?? 0,
      flood429: refused.length,
      flooderTabs,
      innocentBeats: innocentResult.sent.length,
      innocentP50ms: percentile(innocentResult.latencies, 50),
      innocentP99ms: percentile(innocentResult.latencies, 99),
      http5xx: all.filter((s) => s.status >= 500).length,
      rssBeforeMiB: rssBefore,
      rssAfterMiB: rssAfter,
    })
    t.ok(innocentResult.sent.length > 0, 'the innocent contact beat during the flood')
    t.same(innocentResult.statuses, { 204: innocentResult.sent.length }, 'every heartbeat of the innocent contact answered 204')
    t.same(all.filter((s) => s.status >= 500 || s.status === 0).map((s) => `${s.status} ${s.error ?? s.body}`), [], 'no 5xx, no dropped connection')
    t.ok((floodResult.statuses[204] ?? 0) <= MAX_TABS, `at most ${MAX_TABS} of the flood's new tabs were accepted`)
    t.equal(refused.length + (floodResult.statuses[204] ?? 0), floodResult.sent.length, 'the rest were refused with 429')
    t.same(refused.filter((s) => s.retryAfter === undefined || JSON.parse(s.body).error?.code !== 'rate_limited').map((s) => s.body), [], 'each refusal is rate_limited with Retry-After')
    t.equal(online.statusCode, 200)
    t.ok(flooderTabs > 0 && flooderTabs <= MAX_TABS, `the dashboard shows the flooding contact with at most ${MAX_TABS} tabs (${flooderTabs})`)
  })
}
