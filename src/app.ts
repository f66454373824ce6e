import { randomBytes } from 'node:crypto'
import Fastify, { LogController, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import websocket from '@fastify/websocket'
import type { DestinationStream } from 'pino'
import type { Config } from './config/config.js'
import { MAX_ID_LENGTH, createTokenVerifier, type TokenVerifier } from './auth/tokens.js'
import { registerErrorHandler, webSocketErrorHandler } from './errors/error-handler.js'
import { clientErrorHandler, frameworkErrors, guardRequests, lacksHost, rawErrorResponse } from './errors/edge-errors.js'
import { lazyChildLogger, loggerOptions } from './log/logger.js'
import type { PresenceEngine } from './presence/presence-engine.js'
import type { ActivityEventLog } from './activity/event-log/event-log.js'
import type { ConsentBus } from './consent/consent-bus.js'
import { openSharedState } from './shared-state.js'
import { createDiffHub, type DiffHub } from './hub/diff-hub.js'
import { AppError, CLOSE_CODES } from './errors/errors.js'
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { heartbeatRoutes } from './routes/heartbeat.js'
import { adminWsRoutes } from './routes/admin-ws.js'
import { adminApiRoutes } from './routes/admin-api.js'
import { healthRoutes } from './routes/health.js'
import { adminActivityRoutes } from './routes/admin-activity.js'
import { findProjectRoot, openDatabase, migrateDatabase } from './activity/database.js'
import { createConsentService, type ConsentService } from './consent/consent-service.js'
import { loadSnippetAssets, type SnippetAssets } from './snippet/snippet-assets.js'
import { consentRoutes } from './routes/consent.js'
import { snippetRoutes } from './routes/snippet.js'
import { dashboardRoutes } from './routes/dashboard.js'
import type { ActivityStore } from './activity/activity-store.js'
import { createSqlActivityStore } from './activity/sql-activity-store.js'
import { createActivityWriter, type ActivityWriter } from './activity/activity-writer.js'
import { createActivityJobs, type ActivityJobs } from './activity/activity-jobs.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    tokens: TokenVerifier
    presence: PresenceEngine
    /** The activity events on their way to the database. */
    eventLog: ActivityEventLog
    /** Consent notices between the instances. */
    consentBus: ConsentBus
    hub: DiffHub
    /** The durable activity log (MySQL or SQLite). */
    activity: ActivityStore
    activityWriter: ActivityWriter
    activityJobs: ActivityJobs
    consent: ConsentService
    snippet: SnippetAssets
    now: () => number
    /** True once SIGTERM arrived: readiness fails and new dashboards are refused. */
    draining: boolean
  }
}

export interface AppDeps {
  /** The clock; tests inject one to move time without sleeping. */
  now?: () => number
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: DestinationStream
  /** ms between sweeps of expired presence; 0 leaves sweeping to the caller (tests). */
  sweepIntervalMs?: number
  /** Bytes a dashboard socket may lag before it is closed with 1013. */
  sendBufferBytes?: number
  /** Names this instance's Redis connections and its activity consumer. */
  instanceId?: string
  /**
   * Background work of the activity log (writer loop, sampling, retention); false leaves it
   * to the caller (tests drive app.activityWriter and app.activityJobs by hand).
   */
  activityLoops?: boolean
  /** The HTTP server's timeouts; tests shorten them. Defaults: HTTP_TIMEOUTS. */
  httpTimeouts?: Partial<HttpTimeouts>
}

export interface HttpTimeouts {
  /** ms for a request's line and headers to arrive, from its first byte (or from the connection). */
  headersMs: number
  /** ms for a whole request, body included, to arrive; the handler's own time is not counted. */
  requestMs: number
  /** ms an idle keep-alive connection is kept between requests. */
  keepAliveMs: number
  /** ms between Node's checks of the two timeouts above: a late request is cut up to this much later. */
  checkIntervalMs: number
}

/**
 * A heartbeat is one short request line and headers (a token of at most 4 KiB in the query)
 * and at most an 8 KiB body: seconds are plenty on any real connection, and a client that
 * sends a byte at a time (slowloris) holds a socket for no longer. Keep-alive stays above
 * the 60 s idle timeout of common load balancers, so a balancer never reuses a connection
 * the server has just closed, and above the 30 s heartbeat interval, so a tab's beats share
 * one connection.
 */
export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 5_000, requestMs: 10_000, keepAliveMs: 72_000, checkIntervalMs: 1_000 }

/**
 * The WebSocket plugin hands every upgrade request to the router, and its hooks, which close
 * the socket of one that ends as plain HTTP, now run only in its scope. An upgrade to any
 * other path is answered 404 here and its socket closed, as the plugin would have.
 */
function onlyUpgradesTo(app: FastifyInstance, path: string): void {
  const server = app.server
  const plugin = server.listeners('upgrade') as ((request: IncomingMessage, socket: Duplex, head: Buffer) => void)[]
  server.removeAllListeners('upgrade')
  const notFound = rawErrorResponse('not_found', `Only ${path} takes a WebSocket upgrade.`)
  const noHost = rawErrorResponse('invalid_request', 'The Host header is missing.')
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node checks Host on plain requests only (guardRequests answers those).
    const refusal = lacksHost(request) ? noHost : (request.url ?? '').split('?')[0] === path ? undefined : notFound
    if (refusal === undefined) {
      for (const listener of plugin) listener.call(server, request, socket, head)
      return
    }
    socket.on('error', () => socket.destroy())
    socket.end(refusal)
  }
  server.on('upgrade', onUpgrade)
  app.addHook('onClose', async () => {
    server.removeListener('upgrade', onUpgrade)
  })
}

/** The Fastify options production uses; tests build the app through the same function. */
export function appOptions(config: Config, deps: AppDeps = {}): FastifyHttpOptions<Server> {
  const timeouts = { ...HTTP_TIMEOUTS, ...deps.httpTimeouts }
  const requestTimeout = timeouts.requestMs
  return {
    logger: loggerOptions(config.logLevel, deps.logStream),
    // Every heartbeat would be a log line; errors are logged by the error handler instead.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    bodyLimit: 16 * 1024,
    forceCloseConnections: true,
    // A contact or client id in the path is up to MAX_ID_LENGTH UTF-16 code units, and one
    // unit percent-encoded is at most 9 characters (%E2%82%AC): every id a token can carry
    // reaches its route, whichever length the router measures.
    maxParamLength: MAX_ID_LENGTH * 9,
    requestTimeout,
    keepAliveTimeout: timeouts.keepAliveMs,
    http: {
      requestTimeout,
      // Node refuses a headers timeout above the request timeout.
      headersTimeout: Math.min(timeouts.headersMs, requestTimeout),
      connectionsCheckingInterval: timeouts.checkIntervalMs,
      // guardRequests answers a missing Host with the JSON 400; Node's own has no body.
      requireHostHeader: false,
    },
    clientErrorHandler,
    frameworkErrors,
    // guardRequests answers requests that arrive while closing, with Retry-After.
    return503OnClosing: false,
  }
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now
  // First, before any connection is opened: a broken language file stops the start.
  const snippet = loadSnippetAssets({ root: findProjectRoot(), overrideDir: config.langDir })
  const app = Fastify(appOptions(config, deps))
  const shared = await openSharedState(config, { now, instanceId: deps.instanceId, log: app.log })
  const { presence, eventLog, consentBus } = shared
  const hub = createDiffHub({ engine: presence, diffIntervalMs: config.diffIntervalMs, sendBufferBytes: deps.sendBufferBytes, now, log: app.log })
  // Unique per start: it names this instance's stream consumer and pub/sub origin, and pids
  // repeat across containers.
  const instanceId = deps.instanceId ?? `cat-${process.pid}-${randomBytes(3).toString('hex')}`
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, log: app.log })
  let source
  try {
    // Migrations run at start; a database that is down at start stops the start (the stream
    // would keep the events, but a schema that may be behind is no base to write on).
    await migrateDatabase(database)
    source = await eventLog.consumer(instanceId)
  } catch (error) {
    await Promise.allSettled([shared.close(), database.close()])
    throw error
  }
  const activity = createSqlActivityStore({ database, now })
  const activityWriter = createActivityWriter({ source, store: activity, log: app.log, now })
  const loops = deps.activityLoops ?? true
  const activityJobs = createActivityJobs({
    store: activity,
    engine: presence,
    now,
    retentionDays: config.retentionDays,
    log: app.log,
    ...(loops ? {} : { purgeEveryMs: 0, sampleEveryMs: 0 }),
  })
  if (loops) activityWriter.start()
  const consent = createConsentService({ store: activity, engine: presence, bus: consentBus })

  app.decorate('config', config)
  app.decorate('tokens', createTokenVerifier({ secrets: config.secrets, now }))
  app.decorate('presence', presence)
  app.decorate('eventLog', eventLog)
  app.decorate('consentBus', consentBus)
  app.decorate('hub', hub)
  app.decorate('activity', activity)
  app.decorate('activityWriter', activityWriter)
  app.decorate('activityJobs', activityJobs)
  app.decorate('consent', consent)
  app.decorate('snippet', snippet)
  app.decorate('now', now)
  app.decorate('draining', false)
  // However the app is closed, dashboards are refused from here on and readiness fails.
  app.addHook('preClose', (done) => {
    app.draining = true
    done()
  })

  const sweepIntervalMs = deps.sweepIntervalMs ?? 1000
  let sweeper: NodeJS.Timeout | undefined
  let sweeping = false
  if (sweepIntervalMs > 0) {
    sweeper = setInterval(() => {
      if (sweeping) return
      sweeping = true
      presence.sweep().catch((error: unknown) => {
        // An unavailable engine logs that itself, once, not once a second.
        if (!(error instanceof AppError && error.code === 'unavailable')) app.log.warn({ err: error }, 'sweep failed')
      }).finally(() => {
        sweeping = false
      })
    }, sweepIntervalMs)
    sweeper.unref()
  }

  // Whoever opens a resource closes it: the hub's sockets first, then the engine's connections.
  app.addHook('onClose', async () => {
    if (sweeper !== undefined) clearInterval(sweeper)
    activityJobs.stop()
    consent.close()
    hub.close()
    // Written before the engine closes: the memory engine's queue dies with the process.
    await activityWriter.stop({ drainMs: shared.kind === 'memory' ? 5_000 : 0 })
    await shared.close()
    await activity.close()
  })

  registerErrorHandler(app)
  guardRequests(app)
  // Only cross-origin callers need CORS headers, and those must be listed; a browser never
  // checks them on a same-origin request. With none listed the plugin is not registered: its
  // hook would run on every heartbeat to add nothing. Static options: the plugin prepares them
  // once, where a delegator would copy and normalise them on every heartbeat.
  if (config.allowedOrigins.length > 0) {
    await app.register(cors, {
      origin: [...config.allowedOrigins],
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['CAT-Interval', 'Retry-After'],
      maxAge: 600,
    })
  }
  // The WebSocket plugin and /admin/ws in a scope of their own: the plugin's hooks and route
  // wrapper then run on that route only, not on every heartbeat.
  await app.register(async (scope) => {
    await scope.register(websocket, {
      options: { maxPayload: 4096 },
      errorHandler: webSocketErrorHandler,
      // Dashboards are closed with 1012 (service restart) so they reconnect to another instance
      // at once; the plugin's default would close them without a code.
      preClose(done) {
        hub.close(CLOSE_CODES.serviceRestart.code, CLOSE_CODES.serviceRestart.reason)
        for (const client of scope.websocketServer.clients) client.close(CLOSE_CODES.serviceRestart.code, CLOSE_CODES.serviceRestart.reason)
        scope.websocketServer.close(() => done())
      },
    })
    onlyUpgradesTo(app, '/admin/ws')
    await scope.register(adminWsRoutes)
  })
  await app.register(healthRoutes)
  await app.register(snippetRoutes)
  await app.register(consentRoutes)
  await app.register(heartbeatRoutes)
  await app.register(adminApiRoutes)
  await app.register(adminActivityRoutes)
  await app.register(dashboardRoutes)
  return app
}
