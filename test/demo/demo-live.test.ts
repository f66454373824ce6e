/**
 * How issue 18 judges demo mode: the server started as a user starts it, with demo mode and 50
 * simulated contacts; a dashboard shows all 50 within one heartbeat interval of the start, and
 * an erasure request gets 403 demo_mode and erases nothing. On the in-memory engine (the
 * `npm start` default) and on Redis in production, as a public demo install runs.
 */
import t from 'tap'
import { adminToken, cleanRedisSite, uniqueSite, REDIS_URL } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'
import { openDashboard } from '../helpers/faults.js'
import { startInstance } from '../helpers/instance.js'

const CONTACTS = 50
const INTERVAL_S = 5

interface Online {
  contactId: string
  name: string
  company: string
}

/** A dashboard message (CONTRACT §4), the parts this test reads. */
interface Feed {
  type: string
  online?: Online[]
  joined?: Online[]
  updated?: Online[]
  left?: { contactId: string }[]
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`${engine}: with demo mode and ${CONTACTS} simulated contacts the dashboard shows them within one heartbeat interval; an erasure gets 403 demo_mode`, async (t) => {
    const site = uniqueSite('demo-live')
    if (engine === 'redis') cleanRedisSite(t, site)
    const env: Record<string, string> = {
      CAT_DEMO_MODE: '1',
      CAT_DEMO_TRAFFIC: String(CONTACTS),
      CAT_HEARTBEAT_INTERVAL_S: String(INTERVAL_S),
      CAT_DATA_DIR: createTestDataDir(t, 'demo-live'),
      ...(engine === 'redis' ? { REDIS_URL, CAT_SITE: site, NODE_ENV: 'production' } : { NODE_ENV: 'development' }),
    }
    const instance = await startInstance(t, env)
    // The simulation logs its start (pino's `time`, ms) as it sends its first visitors off.
    const startLine = instance.output().split('\n').find((line) => line.includes('demo traffic: simulated contacts browse the demo portal'))
    if (startLine === undefined) throw new Error(`no start line in:\n${instance.output()}`)
    const startedAt = (JSON.parse(startLine) as { time: number }).time
    const deadline = startedAt + INTERVAL_S * 1000

    const dashboard = await openDashboard(instance.origin, adminToken())
    const online = new Map<string, Online>()
    let allAt: number | undefined
    const follow = (): void => {
      for (const message of dashboard.messages.splice(0) as Feed[]) {
        if (message.type === 'snapshot') online.clear()
        for (const presence of [...(message.online ?? []), ...(message.joined ?? []), ...(message.updated ?? [])]) online.set(presence.contactId, presence)
        for (const left of message.left ?? []) online.delete(left.contactId)
        if (online.size === CONTACTS && allAt === undefined) allAt = Date.now()
      }
    }
    dashboard.socket.on('message', follow)
    follow()
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (allAt !== undefined || Date.now() > deadline + 5000) {
          clearInterval(check)
          resolve()
        }
      }, 10)
    })
    t.ok(allAt !== undefined, `the dashboard showed all ${CONTACTS} (at most ${online.size} at once)`)
    t.ok(allAt !== undefined && allAt <= deadline, `within one heartbeat interval (${INTERVAL_S} s): all shown ${allAt === undefined ? 'never' : allAt - startedAt} ms after the start`)
    t.equal(new Set([...online.values()].map((p) => p.name)).size, CONTACTS, 'fifty different names')
    t.ok(new Set([...online.values()].map((p) => p.company)).size > 1, 'of several companies')

    const contactId = [...online.keys()][0] ?? ''
    const headers = { authorization: `Bearer ${adminToken()}` }
    const erase = await fetch(`${instance.origin}/admin/api/contacts/${contactId}`, { method: 'DELETE', headers })
    t.equal(erase.status, 403, 'the erasure request: 403')
    t.match(await erase.json(), { error: { code: 'demo_mode' } }, 'demo_mode')
    const exported = await fetch(`${instance.origin}/admin/api/contacts/${contactId}/export`, { headers })
    t.match(await exported.json(), { contactId, presence: { contactId }, consents: [{ decision: 'granted' }] }, 'the contact is still online, its consent still recorded')
    const now = await fetch(`${instance.origin}/admin/api/online`, { headers })
    t.ok(((await now.json()) as { online: Online[] }).online.some((p) => p.contactId === contactId), 'and listed online')

    const demo = await fetch(`${instance.origin}/demo`)
    t.equal(demo.status, 200, `/demo is served (NODE_ENV=${env.NODE_ENV})`)
    if (env.NODE_ENV === 'development') {
      t.match(instance.output(), /demo mode: +on: the staff side is read-only/, 'npm start says demo mode is on')
      t.match(instance.output(), new RegExp(`demo traffic: +${CONTACTS} simulated contacts`), 'and how many contacts it simulates')
    }

    dashboard.socket.close()
    instance.signal('SIGTERM')
    const exit = await instance.exited
    t.equal(exit.code, 0, 'SIGTERM stops the traffic and the server cleanly')
    const problems = instance.output().split('\n').filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 40)
    t.same(problems, [], 'no warning or error logged')
  })
}
