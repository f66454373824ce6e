import { AppError } from '../errors/errors.js'
import { escalationPoint, secondsLeft, windowOf, type SharedCounters } from './counters.js'

/** Addresses counted at once in a window; past it, new ones are counted in Redis only (or not at all on one instance). */
const MAX_ADDRESSES = 100_000

export interface AuthFailuresOptions {
  /** Requests per address per minute that may fail authentication; 0: no limit. */
  limit: number
  shared?: SharedCounters
  now: () => number
  /** Told of each request refused. */
  onRefused: () => void
  /** Told when counting in Redis fails: the local count still holds. */
  onSharedError?: (error: unknown) => void
}

/** What the token verifier asks before it checks an unknown token, and tells when a check fails. */
export interface AuthFailureGuard {
  /** Throws `429 rate_limited` while `address` is over its failures in this window. */
  check(address: string): void
  /** A request from `address` failed authentication. */
  failed(address: string): void
}

/**
 * The limit on requests that fail authentication, per client address (CAT_RATE_LIMIT_AUTH_FAILURES
 * a minute): past it, the address's requests with a token not verified before are refused
 * before any HMAC is computed, until the window ends, so a flood of forged tokens costs a map
 * lookup each. Tokens verified before (remembered) are served as usual: one broken client
 * behind a shared address does not lock out the rest. With Redis the failures are counted
 * over all instances, past a tenth of the limit, without the request waiting for it.
 */
export function createAuthFailures(options: AuthFailuresOptions): AuthFailureGuard {
  const { limit, shared, now, onRefused, onSharedError } = options
  const escalateAt = escalationPoint(limit, shared !== undefined)
  let window = -1
  let counts = new Map<string, number>()
  let blocked = new Set<string>()
  const turn = (at: number): number => {
    const current = windowOf(at)
    if (current !== window) {
      window = current
      counts = new Map()
      blocked = new Set()
    }
    return current
  }
  return {
    check(address) {
      if (limit === 0 || blocked.size === 0) return
      const at = now()
      turn(at)
      if (!blocked.has(address)) return
      onRefused()
      throw new AppError('rate_limited', `Too many requests from this address failed authentication: at most ${limit} a minute.`, { retryAfterS: secondsLeft(at) })
    },
    failed(address) {
      if (limit === 0) return
      const current = turn(now())
      const known = counts.get(address)
      if (known === undefined && counts.size >= MAX_ADDRESSES) return
      const count = (known ?? 0) + 1
      counts.set(address, count)
      // The limit's worth of failures is allowed; the next request is refused.
      if (count >= limit) blocked.add(address)
      if (shared === undefined || count <= escalateAt) return
      shared.add('auth', address, current, count === escalateAt + 1 ? count : 1).then(
        (total) => {
          if (total >= limit && window === current) blocked.add(address)
        },
        (error: unknown) => onSharedError?.(error),
      )
    },
  }
}
