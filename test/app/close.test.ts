import t from 'tap'
import { buildApp } from '../../src/app.js'
import { adminToken, cleanRedisSite, clientToken, heartbeatUrl, testConfig, uniqueSite, REDIS_URL, ensureConsent } from '../helpers/app.js'
import { connectDashboard } from '../helpers/ws.js'
import { createTestDataDir } from '../helpers/database.js'

/** What keeps the process alive, by kind: sockets, timers, servers. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`app.close() leaves no open handle (${engine} engine, sweeper on, a dashboard connected)`, async (t) => {
    const site = uniqueSite('close')
    if (engine === 'redis') cleanRedisSite(t, site)
    const before = resources()
    const dataDir = createTestDataDir(t, 'close')
    const config = testConfig(engine === 'redis' ? { REDIS_URL, CAT_SITE: site, CAT_DATA_DIR: dataDir } : { CAT_DATA_DIR: dataDir })
    const app = await buildApp(config, { sweepIntervalMs: 50 })
    const token = clientToken()
    await ensureConsent(app, token)
    await app.inject(heartbeatUrl({ token, sid: 'tabclose1', event: 'nav' }))
    const dash = await connectDashboard(app, adminToken())
    await dash.waitFor((m) => m.type === 'snapshot')
    t.not(JSON.stringify(resources()), JSON.stringify(before), 'the running app holds resources')

    await app.close()
    const closed = await dash.closed
    t.equal(closed.code, 1012, 'dashboards are told to reconnect elsewhere')
    // Sockets finish closing on the next turns of the loop; on a loaded machine that takes
    // longer than 50 turns (a closing WebSocket holds a timer until its TCP connection ends).
    // Up to 2 s: a handle that stays past that is a leak.
    for (let i = 0; i < 200 && JSON.stringify(resources()) !== JSON.stringify(before); i += 1) await new Promise((resolve) => setTimeout(resolve, 10))
    t.same(resources(), before, 'the same handles as before the app existed')
  })
}
