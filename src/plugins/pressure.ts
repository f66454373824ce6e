import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { AppError } from '../errors/errors.js'

/** Seconds a shed request is told to wait: the snippet backs off by it. */
const SHED_RETRY_AFTER_S = 5

/** What stays served under pressure: the probes and the metrics, so operators see why. */
const NEVER_SHED = new Set(['/healthz', '/readyz', '/metrics'])

declare module 'fastify' {
  interface FastifyInstance {
    /** True while requests are shed: under pressure, once the first sample after the start is in. */
    overloaded(): boolean
  }
}

export interface PressureOptions {
  /** ms between samples of the event-loop delay and the heap; 1 000 by default, tests shorten it. */
  sampleIntervalMs?: number
}

/**
 * Overload shedding with @fastify/under-pressure: while the event loop's mean delay over the
 * last sample is above CAT_MAX_EVENT_LOOP_DELAY_MS, or the V8 heap in use above
 * CAT_MAX_HEAP_USED_MB, every request but the probes and the metrics gets `503 unavailable`
 * with Retry-After before any work is done for it, so the instance recovers instead of falling
 * over; readiness fails meanwhile (routes/health.ts), so a balancer takes it out.
 *
 * Judged from one sample interval after the app is ready: the sample that spans the start
 * measures the start's own synchronous work (migrations, assets), and one in which the loop
 * never turned reads as an infinite delay, which would shed the first requests of every
 * instance started on a busy machine.
 */
export const pressurePlugin = fp<PressureOptions>(async (app, { sampleIntervalMs }) => {
  const { maxEventLoopDelayMs, maxHeapUsedBytes } = app.config.overload
  let armed = false
  app.addHook('onReady', async () => {
    setTimeout(() => {
      armed = true
    }, sampleIntervalMs ?? 1000).unref()
  })
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    maxHeapUsedBytes,
    ...(sampleIntervalMs === undefined ? {} : { sampleInterval: sampleIntervalMs }),
    pressureHandler: (request, _reply, type) => {
      if (!armed || NEVER_SHED.has(request.routeOptions.url ?? '')) return undefined
      const why = type === 'eventLoopDelay' ? 'its event loop is behind' : 'its memory is nearly full'
      // A rejection goes to the route's error handler: the catalogue's body, Retry-After, counted.
      return Promise.reject(new AppError('unavailable', `This instance is overloaded (${why}); retry after the time in Retry-After.`, { retryAfterS: SHED_RETRY_AFTER_S }))
    },
  })
  app.decorate('overloaded', () => armed && app.isUnderPressure())
}, { name: 'pressure', dependencies: ['core'] })
