import type { LeaveReason } from '../../presence/presence-engine.js'

/**
 * The activity events appended for the durable log (the activity writer consumes them).
 * join: a session starts, with the page at `path`; nav: a tab shows a new page;
 * hidden/visible: a tab's visibility; leave: a tab closed; end: the session ended (`reason`);
 * gap: a visible tab's beat came more than interval + grace after the previous one (a sleeping
 * laptop): the time from `from` to `at` is not visible time.
 */
export type ActivityEventType = 'join' | 'nav' | 'hidden' | 'visible' | 'leave' | 'gap' | 'end'

export interface ActivityEvent {
  /** Unique, ordered: the Redis Stream entry id, or the memory queue's equivalent. */
  id: string
  type: ActivityEventType
  contactId: string
  clientId: string
  sid: string
  path: string
  title: string
  /** Server time of the event, ms. For `end` by expiry: the last time the contact was seen. */
  at: number
  /** join and end (the webhooks' `left` names the contact too). */
  name?: string
  company?: string
  /** end only. */
  reason?: LeaveReason
  /** gap only: the previous beat, ms. */
  from?: number
}

/**
 * Reads the activity events for the durable log, one consumer of a shared group: each event
 * is handed to one consumer, and stays pending until acknowledged after it was written.
 */
export interface ActivityEventSource {
  /**
   * Events to write that were not handed out yet; after retry(), first again those this
   * consumer was handed and has not acknowledged. Waits up to `waitMs` for some. A read may
   * run while earlier events are being written (the writer reads ahead).
   */
  read(count: number, waitMs: number): Promise<ActivityEvent[]>
  /** A write failed: what was handed out and is not acknowledged is read again, first. */
  retry(): void
  /** Takes over events other consumers have held unacknowledged for at least `minIdleMs`. */
  claimStale(minIdleMs: number, count: number): Promise<ActivityEvent[]>
  /** The events are written: forget them (the stream is trimmed only of acknowledged entries). */
  ack(ids: readonly string[]): Promise<void>
  close(): Promise<void>
}

export interface ConsumerOptions {
  /**
   * The consumer group (the Redis log's WRITER_GROUP, WEBHOOK_GROUP): every group gets each
   * event once, handed to one of its consumers, at its own pace; an event leaves the log when
   * every group acknowledged it. Default: the activity writers'.
   */
  group?: string
}

/**
 * The activity events on their way to the durable log: the presence engine appends them (in
 * the same step as the presence change), the activity writer reads and acknowledges them.
 * Memory and Redis implementations sit beside this file.
 */
export interface ActivityEventLog {
  /** A consumer of the events, named uniquely per instance, in the writers' group or another. */
  consumer(name: string, options?: ConsumerOptions): Promise<ActivityEventSource>
  /**
   * Removes a consumer group other than the writers' (webhooks turned off), so that entries
   * no longer wait for it; what it had not acknowledged is forgotten.
   */
  removeGroup(group: string): Promise<void>
  /** Drops a contact's events that are not yet written (erasure); returns how many. */
  discard(contactId: string): Promise<number>
  /** The newest `count` events, oldest first (for inspection and tests). */
  tail(count: number): Promise<ActivityEvent[]>
  /** How many events are not yet written (read or not): the metrics' backlog. */
  backlog(): Promise<number>
}
