/**
 * What a presence webhook carries (CONTRACT.md §6), and how the activity events become it:
 * a session's `join` (the contact's first tab arrives) is `joined`, its `end` is `left` with
 * the reason. The other activity events (pages, visibility, tabs) are not sent.
 */
import { createHash } from 'node:crypto'
import type { ActivityEvent } from '../activity/event-log/event-log.js'
import type { LeaveReason } from '../presence/presence-engine.js'

export interface WebhookEvent {
  /** The activity event's id in the log: the same on every delivery of the event. */
  id: string
  type: 'joined' | 'left'
  contactId: string
  clientId: string
  name: string
  company: string
  /** The page the contact arrived on, or was last on when leaving. */
  path: string
  /** ms since the epoch: the join, or the leave (for a timeout: when the contact was last seen). */
  at: number
  /** left only. */
  reason?: LeaveReason
}

export interface WebhookBatch {
  /** The same for every attempt at this batch: a hash of its events' ids. */
  id: string
  /** ms since the epoch of this attempt. */
  sentAt: number
  events: WebhookEvent[]
}

/** The webhook event of an activity event, or undefined for the kinds that are not sent. */
export function toWebhookEvent(event: ActivityEvent): WebhookEvent | undefined {
  if (event.type !== 'join' && event.type !== 'end') return undefined
  const sent: WebhookEvent = {
    id: event.id,
    type: event.type === 'join' ? 'joined' : 'left',
    contactId: event.contactId,
    clientId: event.clientId,
    name: event.name ?? '',
    company: event.company ?? '',
    path: event.path,
    at: event.at,
  }
  if (event.type === 'end' && event.reason !== undefined) sent.reason = event.reason
  return sent
}

/** A batch's id: its events' ids hashed, so a retried batch keeps its id. */
export function batchId(events: readonly WebhookEvent[]): string {
  return createHash('sha256').update(events.map((event) => event.id).join(',')).digest('hex').slice(0, 32)
}
