import Fastify, { LogController, type FastifyHttpOptions, type FastifyInstance, type onRouteHookHandler } from 'fastify'
import type { Server } from 'node:http'
import AjvCompiler, { type Options as AjvOptions, type ValidatorFactory } from '@fastify/ajv-compiler'
import type { DestinationStream } from 'pino'
import type { Config } from './config/config.js'
import { MAX_ADMIN_TOKEN_LENGTH, MAX_ID_LENGTH } from './auth/tokens.js'
import { clientErrorHandler, frameworkErrors } from './errors/edge-errors.js'
import { lazyChildLogger, loggerOptions } from './log/logger.js'
import { corePlugin } from './plugins/core.js'
import { metricsPlugin } from './plugins/metrics.js'
import { openapiPlugin } from './plugins/openapi.js'
import { pressurePlugin } from './plugins/pressure.js'
import { databasePlugin } from './plugins/database.js'
import { licensePlugin } from './plugins/license.js'
import { sharedStatePlugin } from './plugins/shared-state.js'
import { limitsPlugin } from './plugins/limits.js'
import { settingsPlugin } from './plugins/settings.js'
import { activityJobsPlugin, activityWriterPlugin } from './plugins/activity.js'
import { webhooksPlugin, type WebhooksOptions } from './plugins/webhooks.js'
import { hubPlugin } from './plugins/hub.js'
import { consentPlugin } from './plugins/consent.js'
import { sweeperPlugin } from './plugins/sweeper.js'
import { httpEdgePlugin } from './plugins/http-edge.js'
import { adminWebSocketPlugin } from './plugins/websocket.js'
import { healthRoutes } from './routes/health.js'
import { snippetRoutes } from './routes/snippet.js'
import { consentRoutes } from './routes/consent.js'
import { heartbeatRoutes } from './routes/heartbeat.js'
import { adminApiRoutes } from './routes/admin-api.js'
import { adminActivityRoutes } from './routes/admin-activity.js'
import { settingsRoutes } from './routes/settings.js'
import { adminLicenseRoutes } from './routes/admin-license.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { metricsRoutes } from './routes/metrics.js'
import { openapiRoutes } from './routes/openapi.js'
import { demoTrafficPlugin } from './plugins/demo-traffic.js'
import type { Scheduler } from './demo/scheduler.js'

export interface AppDeps {
  /** The clock; tests inject one to move time without sleeping. */
  now?: () => number
  /** ms between each instance's re-reads of the stored licence (and validations when due); 0 leaves it to the caller (tests). */
  licensePollMs?: number
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
  /** ms between re-reads of the saved live settings; 0 leaves them to the caller (tests call app.settings.refresh()). */
  settingsRefreshMs?: number
  /** ms between the overload checks' samples (event-loop delay, heap); tests shorten it. */
  pressureSampleMs?: number
  /** The HTTP server's timeouts; tests shorten them. Defaults: HTTP_TIMEOUTS. */
  httpTimeouts?: Partial<HttpTimeouts>
  /** The webhook deliverer's backoff, horizon and lease, ms; tests shorten them. */
  webhookTimings?: WebhooksOptions['timings']
  /** Sees every route as it is registered (the OpenAPI test checks each is documented). */
  onRoute?: onRouteHookHandler
  /** The timers of the demo traffic (CAT_DEMO_TRAFFIC); tests drive them with their clock. */
  demoScheduler?: Scheduler
  /** Seeds the demo traffic's choices; tests fix it to replay the same browsing. */
  demoSeed?: number
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
  /** ms the requests in flight have to finish once the app closes; connections still busy then are cut. */
  drainMs: number
}

/**
 * A heartbeat is one short request line and headers (a token of at most 4 KiB in the query)
 * and at most an 8 KiB body: seconds are plenty on any real connection, and a client that
 * sends a byte at a time (slowloris) holds a socket for no longer. Keep-alive stays above
 * the 60 s idle timeout of common load balancers, so a balancer never reuses a connection
 * the server has just closed, and above the 30 s heartbeat interval, so a tab's beats share
 * one connection.
 */
export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 5_000, requestMs: 10_000, keepAliveMs: 72_000, checkIntervalMs: 1_000, drainMs: 5_000 }

/** The most bytes of a request's line and headers: the longest admin token and 16 KiB more (Node's own default). */
export const MAX_HEADER_BYTES = MAX_ADMIN_TOKEN_LENGTH + 16 * 1024

const buildAjvValidator = AjvCompiler()

/**
 * Fastify's validators, with one difference: query strings, params and headers are text, so
 * their schemas coerce ('30' is 30, as Fastify's default does); a JSON body carries its own
 * types and is taken as sent, so a number or a one-element array where a string belongs is a
 * 400, not turned into the string.
 */
const buildValidator: ValidatorFactory = (externalSchemas, options) => {
  const coercing = buildAjvValidator(externalSchemas, options)
  // The options of Ajv's JSON Schema mode, the one Fastify runs here (not JTD).
  const asSent = buildAjvValidator(externalSchemas, { ...options, customOptions: { ...(options?.customOptions as AjvOptions | undefined), coerceTypes: false } } as Parameters<ValidatorFactory>[1])
  return (route) => (route.httpPart === 'body' ? asSent : coercing)(route)
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
    schemaController: { compilersFactory: { buildValidator } },
    // request.ip (the consent ledger, logs) is the socket's address unless the peer is a
    // listed proxy; then it is the rightmost X-Forwarded-For hop that is not a listed proxy.
    // Off when none is listed, so a forged header from anyone else is ignored.
    trustProxy: config.trustProxy.length === 0 ? false : [...config.trustProxy],
    // Closing lets the requests in flight finish rather than cutting every connection: a load
    // balancer would resend a cut GET to another instance after this one had served it, and
    // cannot resend a cut POST at all. guardRequests closes their connections after them and
    // cuts what is still busy after drainMs.
    forceCloseConnections: false,
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
      // Room for the longest admin token (a `clients` claim of thousands of ids) in a header
      // or the WebSocket's URL, and the rest of the request's headers.
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    clientErrorHandler,
    frameworkErrors,
    // guardRequests answers requests that arrive while closing, with Retry-After.
    return503OnClosing: false,
  }
}

/**
 * The app as a list of plugins in load order. Each plugin opens what it owns, decorates the
 * instance and closes it in its own onClose hook. Fastify runs onClose hooks in the reverse
 * order they were added (after the preClose hooks and the server's close), so each plugin
 * closes before the ones above it, while what it uses is still open:
 * dashboards get 1012 and the demo traffic stops (preClose), then the sweeper stops, the activity jobs, consent and hub
 * stop, the writer flushes, the shared state closes, and the database last.
 */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = Fastify(appOptions(config, deps))
  const loops = deps.activityLoops ?? true
  if (deps.onRoute !== undefined) app.addHook('onRoute', deps.onRoute)
  try {
    await app.register(corePlugin, { config, now: deps.now ?? Date.now })
    // Before every route: it describes each as it is registered.
    await app.register(openapiPlugin)
    await app.register(metricsPlugin)
    await app.register(pressurePlugin, { sampleIntervalMs: deps.pressureSampleMs })
    await app.register(databasePlugin)
    await app.register(licensePlugin, { instanceId: deps.instanceId, pollMs: deps.licensePollMs })
    await app.register(sharedStatePlugin, { instanceId: deps.instanceId })
    await app.register(limitsPlugin)
    await app.register(settingsPlugin, { refreshEveryMs: deps.settingsRefreshMs })
    await app.register(activityWriterPlugin, { loops, consumerName: deps.instanceId })
    await app.register(webhooksPlugin, { consumerName: deps.instanceId, timings: deps.webhookTimings })
    await app.register(hubPlugin, { sendBufferBytes: deps.sendBufferBytes })
    await app.register(consentPlugin)
    await app.register(activityJobsPlugin, { loops })
    await app.register(sweeperPlugin, { intervalMs: deps.sweepIntervalMs ?? 1000 })
    await app.register(httpEdgePlugin, { drainMs: { ...HTTP_TIMEOUTS, ...deps.httpTimeouts }.drainMs })
    await app.register(adminWebSocketPlugin)
    await app.register(healthRoutes)
    await app.register(snippetRoutes)
    await app.register(consentRoutes)
    await app.register(heartbeatRoutes)
    await app.register(adminApiRoutes)
    await app.register(adminActivityRoutes)
    await app.register(settingsRoutes)
    await app.register(adminLicenseRoutes)
    await app.register(dashboardRoutes)
    await app.register(metricsRoutes)
    await app.register(openapiRoutes)
    // After the routes: it sends its simulated visitors through them.
    await app.register(demoTrafficPlugin, { scheduler: deps.demoScheduler, seed: deps.demoSeed })
  } catch (error) {
    // A start that fails halfway (a database down, a broken language file) closes what the
    // plugins before it opened; the error is the start's, not the close's.
    await app.close().catch(() => undefined)
    throw error
  }
  return app
}
