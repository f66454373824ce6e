/**
 * The limits of the consent and admin routes, through @fastify/rate-limit: counted per
 * identity (a contact, a staff member) in windows of a minute aligned to the clock, shared by
 * the instances in Redis (SharedCounters) or, on one instance, in this process. Its store
 * counts one kind of request for every route of the context it is registered in, so a staff
 * member has one budget over the whole admin API.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit'
import { AppError } from '../errors/errors.js'
import type { RateLimitedRoute } from '../metrics/metrics.js'
import { WINDOW_MS, secondsLeft, windowOf, type SharedCounters } from './counters.js'

/** Identities counted at once in a window on one instance (memory engine). */
const MAX_LOCAL_KEYS = 100_000

declare module 'fastify' {
  interface FastifyRequest {
    /** Who a limited request is counted against, once its token is verified: `contact:…`, `staff:…`. */
    limitKey: string | undefined
  }
}

/** A store for @fastify/rate-limit that counts `kind` in shared counters, or in this process. */
/** Each app's store per kind: every context of the app that limits a kind counts in the same one. */
const stores = new WeakMap<object, Map<string, new () => FastifyRateLimitStore>>()

function storeOf(kind: string, shared: SharedCounters | undefined, now: () => number): new () => FastifyRateLimitStore {
  let window = -1
  let local = new Map<string, number>()
  return class CountingStore implements FastifyRateLimitStore {
    incr(key: string, callback: Parameters<FastifyRateLimitStore['incr']>[1]): void {
      const at = now()
      const current = windowOf(at)
      const ttl = (current + 1) * WINDOW_MS - at
      if (shared !== undefined) {
        shared.add(kind, key, current, 1).then((count) => callback(null, { current: count, ttl }), (error: unknown) => callback(error as Error))
        return
      }
      if (current !== window) {
        window = current
        local = new Map()
      }
      const count = (local.get(key) ?? 0) + 1
      if (local.size < MAX_LOCAL_KEYS || local.has(key)) local.set(key, count)
      callback(null, { current: count, ttl })
    }

    child(): CountingStore {
      return this
    }
  }
}

export interface RouteLimitOptions {
  /** What is counted, and the `route` label of cat_rate_limited_total. */
  kind: RateLimitedRoute
  /** Requests a minute per identity; 0: no limit (nothing is registered). */
  max: number
  /** What the 429 says is limited, e.g. `consent decisions of this contact`. */
  what: string
}

/**
 * Limits every route of `app`'s context (register it in the context of the routes): a request
 * is counted once its route has set `request.limitKey` (in an onRequest or preHandler hook of
 * its own, after verifying the token); one without a key is not counted (it fails
 * authentication, which the auth-failure limit counts).
 */
export async function limitRoutes(app: FastifyInstance, options: RouteLimitOptions): Promise<void> {
  const { kind, max, what } = options
  if (max === 0) return
  if (!app.hasRequestDecorator('limitKey')) app.decorateRequest('limitKey', undefined)
  const { metrics, now } = app
  // app.metrics: one object per app, shared by its contexts.
  const own = stores.get(metrics) ?? new Map<string, new () => FastifyRateLimitStore>()
  stores.set(metrics, own)
  const store = own.get(kind) ?? storeOf(kind, app.sharedCounters, now)
  own.set(kind, store)
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: WINDOW_MS,
    hook: 'preHandler',
    store,
    // A Redis that fails counts as unavailable for the limit only: the route answers on its own.
    skipOnError: true,
    keyGenerator: (request: FastifyRequest) => request.limitKey ?? '',
    allowList: (request: FastifyRequest) => request.limitKey === undefined,
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': false },
    errorResponseBuilder: () => {
      metrics.rateLimited(kind).inc()
      return new AppError('rate_limited', `Too many ${what}: at most ${max} a minute.`, { retryAfterS: secondsLeft(now()) })
    },
  })
}
