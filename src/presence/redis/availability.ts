import type { FastifyBaseLogger } from 'fastify'
import { AppError } from '../../errors/errors.js'

/** Redis answers slower than this, or not at all: the request gets 503 with this Retry-After. */
const RETRY_AFTER_S = 5

/** ioredis's error for a command unanswered within `commandTimeout`. */
export function timedOut(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out'
}

function unavailable(cause: unknown): AppError {
  return new AppError('unavailable', 'Presence store (Redis) is unavailable.', { retryAfterS: RETRY_AFTER_S, cause })
}

/** Runs a call to Redis; a failure becomes AppError 'unavailable' (503). */
export type RedisCall = <T>(fn: () => Promise<T>) => Promise<T>

/**
 * The one gate every request's call to Redis goes through: it logs Redis's changes of state
 * (unavailable, available again), not every failure.
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
        log?.warn({ reason: error instanceof Error ? error.message : String(error) }, 'Redis is unavailable; its callers get 503 until it answers again')
      }
      throw unavailable(error)
    }
  }
}
