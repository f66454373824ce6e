import { AppError } from '../errors/errors.js'
import type { ClientContacts } from '../auth/client-contacts.js'
import { escalationPoint, secondsLeft, windowOf, type SharedCounters } from './counters.js'

export interface HeartbeatLimitOptions {
  /** Heartbeats per contact per minute; 0: no limit. */
  limit: number
  /** Where the contacts seen are remembered: their count in the window is kept beside them. */
  contacts: ClientContacts
  /** With Redis, the count the instances share. */
  shared?: SharedCounters
  now: () => number
  /** Told of each heartbeat refused. */
  onRefused: () => void
}

/**
 * The limit on one contact's heartbeats (CAT_RATE_LIMIT_HEARTBEATS a minute). A contact's
 * count lives beside its remembered tokens (ClientContacts.hit, two typed-array slots), so the
 * usual heartbeat is counted without an allocation or a round trip. Past a tenth of the limit
 * in a window the contact is counted in Redis too (escalationPoint): the limit then holds over
 * all instances. A contact that is not remembered (more than ClientContacts holds) is not
 * limited.
 */
export function createHeartbeatLimit(options: HeartbeatLimitOptions): { check(contactId: string): Promise<void> | undefined } {
  const { limit, contacts, shared, now, onRefused } = options
  const escalateAt = escalationPoint(limit, shared !== undefined)
  const refuse = (at: number): never => {
    onRefused()
    throw new AppError('rate_limited', `Too many heartbeats of this contact: at most ${limit} a minute.`, { retryAfterS: secondsLeft(at) })
  }
  return {
    check(contactId) {
      if (limit === 0) return undefined
      const at = now()
      const window = windowOf(at)
      const count = contacts.hit(contactId, window)
      if (count <= escalateAt) return undefined
      if (shared === undefined) return refuse(at)
      // The first request past the point brings what this instance counted before it.
      return shared.add('hb', contactId, window, count === escalateAt + 1 ? count : 1).then((total) => {
        if (total > limit) refuse(at)
      })
    },
  }
}
