import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FeedMessage } from '../presence/presence-engine.js'
import { readinessChecks } from './health.js'
import { isLoopbackHost } from './snippet.js'
import { text } from './openapi.js'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * GET /metrics, the Prometheus text format: to callers on this machine (the socket's peer, not
 * X-Forwarded-For: a proxy on the same machine forwards for others, so a request with
 * forwarding headers is not taken as local), or to anyone with `Authorization: Bearer
 * $CAT_METRICS_TOKEN`. Anyone else, and everyone with CAT_METRICS=off, gets the 404 of a route
 * that does not exist. Also feeds the site-wide counters from the presence feed: leaves by
 * reason, the sweep's lag, the feed's resyncs.
 */
export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { metrics, config } = app
  if (!metrics.enabled) return
  metrics.setSources({
    online: () => app.presence.count(),
    dashboards: () => app.hub.size,
    backlog: () => app.eventLog.backlog(),
    ready: async () => Object.values(await readinessChecks(app)).every((state) => state === 'ok'),
  })
  const unsubscribe = app.presence.onFeed((message: FeedMessage) => {
    if (message.type === 'reset') {
      metrics.feedResyncs.inc()
      return
    }
    const { change } = message
    if (change.kind !== 'left') return
    const { reason, at } = change.left
    metrics.leaves(reason).inc()
    // `at` of an expiry is when the tab was last seen: it expired a timeout (the one in force) later.
    if (reason === 'timeout' || reason === 'idle') {
      const { idleTimeoutS, presenceTimeoutS } = app.settings.current
      metrics.sweepLag.observe(Math.max(0, app.now() - at - (reason === 'idle' ? idleTimeoutS : presenceTimeoutS) * 1000) / 1000)
    }
  })
  app.addHook('onClose', async () => unsubscribe())

  const token = config.metricsToken === undefined ? undefined : digest(config.metricsToken)
  const allowed = (request: FastifyRequest): boolean => {
    const authorization = request.headers.authorization
    if (token !== undefined && authorization !== undefined && authorization.startsWith('Bearer ')) {
      return timingSafeEqual(digest(authorization.slice(7)), token)
    }
    const forwarded = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined
    const peer = request.socket.remoteAddress
    return !forwarded && peer !== undefined && isLoopbackHost(peer)
  }

  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics',
      description: 'For callers on this machine without forwarding headers, or anyone with `Authorization: Bearer $CAT_METRICS_TOKEN`; everyone else gets 404 not_found.',
      tags: ['operations'],
      security: [{ metricsToken: [] }, {}],
    },
    config: { docs: { errors: ['not_found'], responses: { 200: text('The Prometheus text format.', 'text/plain') } } },
  }, async (request, reply) => {
    if (!allowed(request)) {
      reply.callNotFound()
      return reply
    }
    const text = await metrics.registry.metrics()
    return reply.header('Cache-Control', 'no-store').type(metrics.registry.contentType).send(text)
  })
}
