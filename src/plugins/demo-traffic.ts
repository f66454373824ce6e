import { randomInt } from 'node:crypto'
import fp from 'fastify-plugin'
import { signToken } from '../auth/tokens.js'
import { createDemoTraffic, type DemoTraffic } from '../demo/demo-traffic.js'
import { demoContacts } from '../demo/demo-population.js'
import { seededRandom } from '../demo/random.js'
import { realScheduler, type Scheduler } from '../demo/scheduler.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The simulated contacts of CAT_DEMO_TRAFFIC; undefined when there are none. */
    demoTraffic: DemoTraffic | undefined
  }
}

export interface DemoTrafficPluginOptions {
  /** The simulation's timers; Node's by default, a test's own clock-driven ones in tests. */
  scheduler?: Scheduler
  /** Seeds the simulation's choices; random by default, fixed in tests to replay the same browsing. */
  seed?: number
}

/** A simulated contact's token lives for two hours; each visit gets a new one. */
const TOKEN_TTL_S = 2 * 3600

/**
 * Demo mode's simulated contacts (CAT_DEMO_TRAFFIC): they browse the demo portal through the
 * app's own routes with `app.inject`, so each consent and heartbeat takes the whole route
 * chain a browser's takes (token check, consent enforcement, rate limits, validation, the
 * presence engine, the activity log, metrics) without a socket: it works wherever the server
 * listens (0.0.0.0, a port chosen by the system, TLS at a proxy) and before it listens.
 * Started once the app is ready, stopped first when it closes (preClose), while every part it
 * drives is still open.
 */
export const demoTrafficPlugin = fp<DemoTrafficPluginOptions>(async (app, options) => {
  const { config } = app
  if (config.demoMode) app.log.info({ demoTraffic: config.demoTraffic }, 'demo mode: the staff side is read-only')
  if (config.demoTraffic === 0) {
    app.decorate('demoTraffic', undefined)
    return
  }
  /** The heartbeat interval in force (live settings): the one place the simulation reads it from. */
  const heartbeatIntervalS = (): number => app.settings.current.heartbeatIntervalS
  const traffic = createDemoTraffic({
    contacts: demoContacts(config.demoTraffic),
    send: async ({ method, url, headers, payload }) => {
      const res = await app.inject({ method, url, headers, payload })
      const retryAfterS = Number(res.headers['retry-after'])
      return { statusCode: res.statusCode, body: res.body, ...(retryAfterS > 0 ? { retryAfterS } : {}) }
    },
    mintToken: (contact) => signToken({ aud: 'client', sub: contact.id, clientId: contact.clientId, name: contact.name, company: contact.company, ttlS: TOKEN_TTL_S }, config.secrets, app.now()),
    consentVersion: (locale) => app.snippet.get(locale).version,
    heartbeatIntervalS,
    now: app.now,
    scheduler: options.scheduler ?? realScheduler,
    random: seededRandom(options.seed ?? randomInt(2 ** 31)),
    log: app.log,
  })
  app.decorate('demoTraffic', traffic)
  app.addHook('onReady', async () => traffic.start())
  app.addHook('preClose', async () => traffic.stop())
}, { name: 'demo-traffic', dependencies: ['core', 'settings'] })
