/**
 * The event log in this process's memory (one instance): the memory presence engine appends to
 * a queue per consumer group, which that group's one consumer reads (the activity writer's
 * from the start; another group's, the webhooks', from when it is opened).
 */
import type { ActivityEvent, ActivityEventLog, ActivityEventSource } from './event-log.js'

/** The writers' group: the queue whose length is the backlog. */
const WRITER_GROUP = 'cat-writers'

export interface MemoryEventLogOptions {
  /** Events kept for the activity writer; the oldest are dropped past this. */
  maxQueuedEvents?: number
}

export interface MemoryEventLog extends ActivityEventLog {
  /** Appends an event, given an id shaped like a stream id (ms-seq), ordered even when the clock stands still. */
  append(event: Omit<ActivityEvent, 'id'>): void
  /** Wakes a waiting reader, which then finds nothing new. */
  close(): void
}

export function createMemoryEventLog(options: MemoryEventLogOptions = {}): MemoryEventLog {
  const { maxQueuedEvents = 1_000_000 } = options
  /** What is not yet written, oldest first. */
  const queue: ActivityEvent[] = []
  /** The queues of the other groups, by group name: what each has not acknowledged. */
  const others = new Map<string, ActivityEvent[]>()
  let lastEventMs = 0
  let eventSeq = 0
  /** Wakes a reader waiting for events. */
  let wake: (() => void) | undefined
  /** Wakes the other groups' waiting readers. */
  const wakers = new Map<string, () => void>()

  return {
    append(event) {
      if (event.at > lastEventMs) {
        lastEventMs = event.at
        eventSeq = 0
      } else {
        eventSeq += 1
      }
      const appended = { id: `${lastEventMs}-${eventSeq}`, ...event }
      queue.push(appended)
      if (queue.length > maxQueuedEvents) queue.shift()
      for (const [group, other] of others) {
        other.push(appended)
        if (other.length > maxQueuedEvents) other.shift()
        wakers.get(group)?.()
      }
      wake?.()
    },

    async consumer(_name, { group } = {}): Promise<ActivityEventSource> {
      if (group === undefined || group === WRITER_GROUP) {
        return new MemoryEventSource(queue, (waiter) => {
          wake = waiter
        })
      }
      let other = others.get(group)
      if (other === undefined) others.set(group, (other = []))
      return new MemoryEventSource(other, (waiter) => {
        if (waiter === undefined) wakers.delete(group)
        else wakers.set(group, waiter)
      })
    },

    async removeGroup(group) {
      others.delete(group)
      wakers.delete(group)
    },

    async tail(count) {
      return queue.slice(-count)
    },

    async backlog() {
      return queue.length
    },

    async discard(contactId) {
      for (const other of others.values()) {
        let keep = 0
        for (const event of other) if (event.contactId !== contactId) other[keep++] = event
        other.length = keep
      }
      const before = queue.length
      let keep = 0
      for (const event of queue) if (event.contactId !== contactId) queue[keep++] = event
      queue.length = keep
      return before - keep
    },

    close() {
      for (const waker of wakers.values()) waker()
      wake?.()
    },
  }
}

/**
 * One process, one consumer: the queue is what is not yet written; `handed` what of it was read
 * and is being written (reads go on meanwhile), forgotten by retry().
 */
class MemoryEventSource implements ActivityEventSource {
  private closed = false
  private readonly handed = new Set<string>()
  private wake: (() => void) | undefined

  constructor(
    private readonly queue: ActivityEvent[],
    /** Sets the function an append calls to wake this source's waiting read (undefined: none waits). */
    private readonly setWaker: (wake: (() => void) | undefined) => void,
  ) {}

  async read(count: number, waitMs: number): Promise<ActivityEvent[]> {
    if (this.fresh(count).length === 0 && waitMs > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
        this.setWaker(this.wake)
      })
      this.wake = undefined
      this.setWaker(undefined)
    }
    const events = this.fresh(count)
    for (const event of events) this.handed.add(event.id)
    return events
  }

  retry(): void {
    this.handed.clear()
  }

  async claimStale(): Promise<ActivityEvent[]> {
    return []
  }

  async ack(ids: readonly string[]): Promise<void> {
    const { queue } = this
    for (const id of ids) this.handed.delete(id)
    const done = new Set(ids)
    let head = 0
    while (head < queue.length && done.has((queue[head] as ActivityEvent).id)) head += 1
    if (head === done.size) {
      // The usual case: what was read was the head of the queue.
      queue.splice(0, head)
      return
    }
    let keep = 0
    for (const event of queue) if (!done.has(event.id)) queue[keep++] = event
    queue.length = keep
  }

  async close(): Promise<void> {
    this.closed = true
    this.wake?.()
  }

  /** Up to `count` events not handed out yet, oldest first. */
  private fresh(count: number): ActivityEvent[] {
    const events: ActivityEvent[] = []
    for (const event of this.queue) {
      if (events.length >= count) break
      if (!this.handed.has(event.id)) events.push(event)
    }
    return events
  }
}
