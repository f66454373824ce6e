import type { FastifyBaseLogger } from 'fastify'
import { AppError } from '../../errors/errors.js'
import { reasonOf } from '../../log/logger.js'

/** Redis answers slower than this, or not at all: the request gets 503 with this Retry-After. */
const RETRY_AFTER_S = 5

/**
 * Errors of ioredis's Cluster while it cannot serve a command for now: the cluster is down or
 * failing over (CLUSTERDOWN, MASTERDOWN), a slot is moving (TRYAGAIN; MOVED and ASK when the
 * redirections ran out), its slot map cannot be read, or it is not (re)connected yet. Only
 * looked at when a call has failed, so the commands that succeed pay nothing for it.
 */
const CLUSTER_UNAVAILABLE = /^(?:(?:CLUSTERDOWN|TRYAGAIN|MOVED|ASK|MASTERDOWN|LOADING) |Too many Cluster redirections|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes is available|Connection is closed|Cluster is (?:ended|disconnected|disconnecting))/

/**
 * Redis cannot answer for now: a command unanswered within `commandTimeout` (a Redis that
 * hangs), or a cluster failing over. What is queued behind such a call would fare no better.
 */
export function timedOut(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return error.message === 'Command timed out' || CLUSTER_UNAVAILABLE.test(error.message)
}

function unavailable(cause: unknown): AppError {
  return new AppError('unavailable', 'Presence store (Redis) is unavailable.', { retryAfterS: RETRY_AFTER_S, cause })
}

/** Runs a call to Redis; a failure becomes AppError 'unavailable' (503). */
export type RedisCall = <T>(fn: () => Promise<T>) => Promise<T>

/**
 * The one gate every request's call to Redis goes through: it logs Redis's changes of state
 * (unavailable, available again), not every failure. Whatever the call fails with, a timeout,
 * a dropped connection or a cluster failing over (`timedOut`), the request gets 503, never 500.
 */
export function createRedisCall(log?: Pick<FastifyBaseLogger, 'info' | 'warn'>): RedisCall {
  let failing = false
  return async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn()
      if (failing) {
        failing = false
        log?.info('Redis is available again')
      }
      return result
    } catch (error) {
      if (!failing) {
        failing = true
        log?.warn({ reason: reasonOf(error) }, 'Redis is unavailable; its callers get 503 until it answers again')
      }
      throw unavailable(error)
    }
  }
}
