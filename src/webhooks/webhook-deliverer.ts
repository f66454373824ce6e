/**
 * Delivers the presence webhooks from the event log, as one consumer of the webhooks' own
 * group: an event is acknowledged there only after the receiver answered 2xx (at least once),
 * or after the retry horizon (dropped, counted and logged). The instance holding the lease
 * delivers; its batches go one at a time, in the order of the streams, so a contact's events
 * never overtake each other. A leave waits `debounceMs` (unacknowledged, so it survives the
 * process) and a join of the contact within that time cancels both.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { ActivityEvent, ActivityEventSource } from '../activity/event-log/event-log.js'
import { batchId, toWebhookEvent, type WebhookBatch, type WebhookEvent } from './webhook-event.js'
import type { WebhookLease } from './webhook-lease.js'
import type { SendResult } from './webhook-sender.js'

export interface WebhookDelivererOptions {
  source: ActivityEventSource
  lease: WebhookLease
  send: (batch: WebhookBatch) => Promise<SendResult>
  log: FastifyBaseLogger
  /** The clock of events, debounce and retries (ms). */
  now?: () => number
  /** A leave and a join of one contact within this many ms cancel out; 0 sends every leave at once. */
  debounceMs: number
  /** Events per POST. */
  batchSize?: number
  /** ms a read of the log waits for new events. */
  waitMs?: number
  /** Backoff after a failed POST, ms: doubles from min up to max, each with up to half again of jitter. */
  retryMinMs?: number
  retryMaxMs?: number
  /** ms a batch is retried from its first failure before its events are dropped. */
  horizonMs?: number
  /**
   * ms the lease lasts unless renewed (a dead deliverer is replaced after at most this); renewed
   * every third of it, between POSTs: a POST's timeout stays below the other two thirds.
   */
  leaseMs?: number
  /** Events taken over from a deliverer that died, at most, when the lease changes hands. */
  takeOverCount?: number
  /** Held and ready events past which reading pauses (the receiver is down): the rest waits in the log. */
  maxBuffered?: number
  random?: () => number
  onDelivered?: (count: number) => void
  onDropped?: (count: number) => void
  onFailed?: () => void
}

export interface WebhookDeliverer {
  start(): void
  stop(): Promise<void>
}

interface Pending {
  event: WebhookEvent
  /** Log ids acknowledged with it: its own. */
  ids: string[]
}

export function createWebhookDeliverer(options: WebhookDelivererOptions): WebhookDeliverer {
  const {
    source, lease, send, log, now = Date.now, debounceMs, batchSize = 100, waitMs = 250, retryMinMs = 1_000, retryMaxMs = 60_000,
    horizonMs = 3_600_000, leaseMs = 15_000, takeOverCount = 100_000, maxBuffered = 10_000, random = Math.random, onDelivered, onDropped, onFailed,
  } = options

  /** Per contact with a leave held: that leave first, then what came after it, in order. */
  const held = new Map<string, Pending[]>()
  /** Ready to send, in order. */
  let ready: Pending[] = []
  let leader = false
  /** Real time (not the injected clock) of the last renewal: the lease lives in Redis time. */
  let renewedAt = -Infinity
  let failures = 0
  let firstFailureAt = 0
  let retryAt = 0
  let running = false
  let loop: Promise<void> | undefined
  let wake: (() => void) | undefined

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })

  async function ack(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await source.ack(ids)
  }

  /** Takes new events in: the ones not sent are acknowledged at once, leaves are held, a join cancels a held leave. */
  async function intake(events: readonly ActivityEvent[]): Promise<void> {
    const done: string[] = []
    for (const activity of events) {
      const event = toWebhookEvent(activity)
      if (event === undefined) {
        done.push(activity.id)
        continue
      }
      const item: Pending = { event, ids: [activity.id] }
      const queue = held.get(event.contactId)
      if (queue !== undefined) {
        const last = queue[queue.length - 1] as Pending
        if (event.type === 'joined' && last.event.type === 'left' && event.at - last.event.at <= debounceMs) {
          // A reload: the leave and this join notify nobody.
          queue.pop()
          done.push(...last.ids, ...item.ids)
          if (queue.length === 0) held.delete(event.contactId)
        } else {
          queue.push(item)
        }
      } else if (event.type === 'left' && debounceMs > 0) {
        held.set(event.contactId, [item])
      } else {
        ready.push(item)
      }
    }
    await ack(done)
  }

  /** Moves what is due from the held queues to `ready`: each leave once its debounce is over, and what followed it. */
  function release(): void {
    const time = now()
    for (const [contactId, queue] of held) {
      while (queue.length > 0) {
        const head = queue[0] as Pending
        if (head.event.type === 'left' && time < head.event.at + debounceMs) break
        ready.push(queue.shift() as Pending)
      }
      if (queue.length === 0) held.delete(contactId)
    }
  }

  async function sendBatch(): Promise<void> {
    const batch = ready.slice(0, batchSize)
    const events = batch.map((item) => item.event)
    const result = await send({ id: batchId(events), sentAt: now(), events })
    const ids = batch.flatMap((item) => item.ids)
    if (result.ok) {
      await ack(ids)
      ready = ready.slice(batch.length)
      failures = 0
      onDelivered?.(events.length)
      return
    }
    onFailed?.()
    const time = now()
    if (failures === 0) firstFailureAt = time
    failures += 1
    if (time - firstFailureAt >= horizonMs) {
      log.error({ count: events.length, batch: batchId(events), status: result.status, error: result.error, failures }, 'webhooks: the receiver failed for the whole retry horizon; these events are dropped')
      await ack(ids)
      ready = ready.slice(batch.length)
      failures = 0
      onDropped?.(events.length)
      return
    }
    const backoff = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures - 1, 30))
    retryAt = time + backoff * (1 + random() / 2)
    log.warn({ count: events.length, status: result.status, error: result.error, failures }, 'webhooks: the receiver failed; retrying')
  }

  /** Keeps the lease; on taking it over, takes over what the deliverer before left pending. */
  async function keepLease(): Promise<boolean> {
    const real = performance.now()
    if (leader && real - renewedAt < leaseMs / 3) return true
    const holds = await lease.hold(leaseMs)
    renewedAt = real
    if (holds && !leader) {
      leader = true
      held.clear()
      ready = []
      failures = 0
      // Everything pending in the group is of a deliverer that is gone (or of this one before it lost the lease), oldest first.
      const pending = await source.claimStale(0, takeOverCount)
      if (pending.length > 0) log.info({ count: pending.length }, 'webhooks: took over events left pending')
      await intake(pending)
    } else if (!holds && leader) {
      // Another instance delivers now: what this one held is pending, and that one takes it over.
      leader = false
      held.clear()
      ready = []
    }
    return holds
  }

  async function step(): Promise<void> {
    if (!(await keepLease())) {
      await sleep(leaseMs / 3)
      return
    }
    release()
    if (ready.length > 0 && now() >= retryAt) {
      await sendBatch()
      return
    }
    let buffered = ready.length
    for (const queue of held.values()) buffered += queue.length
    if (buffered >= maxBuffered) {
      await sleep(waitMs)
      return
    }
    await intake(await source.read(batchSize, waitMs))
  }

  async function run(): Promise<void> {
    let errorBackoff = retryMinMs
    while (running) {
      try {
        await step()
        errorBackoff = retryMinMs
      } catch (error) {
        // The log (Redis) failed: nothing is lost, what is not acknowledged stays pending.
        log.warn({ err: error }, 'webhooks: reading the event log failed; retrying')
        source.retry()
        leader = false
        held.clear()
        ready = []
        if (running) await sleep(errorBackoff)
        errorBackoff = Math.min(retryMaxMs, errorBackoff * 2)
      }
    }
  }

  return {
    start() {
      if (running) return
      running = true
      loop = run()
    },
    async stop() {
      running = false
      wake?.()
      await loop
      // What is held stays pending in the log: the next holder of the lease takes it over at once.
      if (leader) await lease.release().catch(() => undefined)
      await source.close()
    },
  }
}
