/**
 * The deliverer's rules on the memory event log with an injected clock: what a leave and a join
 * of one contact become inside and outside the debounce, in which order, and the backoff.
 */
import t, { type Test } from 'tap'
import pino from 'pino'
import { createMemoryEventLog } from '../../src/activity/event-log/memory-event-log.js'
import type { ActivityEvent } from '../../src/activity/event-log/event-log.js'
import { createWebhookDeliverer } from '../../src/webhooks/webhook-deliverer.js'
import { memoryWebhookLease } from '../../src/webhooks/webhook-lease.js'
import type { WebhookBatch } from '../../src/webhooks/webhook-event.js'
import { createClock, until } from '../helpers/app.js'

const T0 = 1_800_000_000_000

async function setup(t: Test, debounceMs: number, answer: () => boolean = () => true) {
  const clock = createClock(T0)
  const log = createMemoryEventLog()
  const batches: WebhookBatch[] = []
  let attempts = 0
  const deliverer = createWebhookDeliverer({
    source: await log.consumer('test', { group: 'cat-webhooks' }),
    lease: memoryWebhookLease(),
    send: async (batch) => {
      attempts += 1
      if (!answer()) return { ok: false, status: 500 }
      batches.push(batch)
      return { ok: true, status: 200 }
    },
    log: pino({ level: 'silent' }),
    now: clock.now,
    debounceMs,
    waitMs: 10,
    retryMinMs: 1_000,
    retryMaxMs: 8_000,
    random: () => 0,
  })
  deliverer.start()
  t.teardown(() => deliverer.stop())
  const append = (type: ActivityEvent['type'], contactId: string, at: number, extra: Partial<ActivityEvent> = {}): void =>
    log.append({ type, contactId, clientId: 'c', sid: 's', path: '/', title: '', at, ...(type === 'end' ? { reason: 'leave' } : {}), ...extra })
  const sent = (): string[] => batches.flatMap((b) => b.events.map((e) => `${e.type} ${e.contactId}`))
  return { clock, append, sent, attempts: () => attempts }
}

const settle = (ms = 100): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a leave and a join within the debounce cancel; outside it both go, in order', async (t) => {
  const { clock, append, sent } = await setup(t, 5_000)
  append('join', 'a', T0)
  append('nav', 'a', T0)
  await until('the join', () => (sent().length === 1 ? true : undefined))
  append('end', 'a', T0 + 1_000)
  append('join', 'a', T0 + 5_900)
  await settle()
  clock.advance(20_000)
  await settle()
  t.strictSame(sent(), ['joined a'], 'cancelled: 4.9 s apart')

  append('end', 'a', T0 + 30_000)
  append('join', 'a', T0 + 35_001)
  append('end', 'a', T0 + 36_000)
  await settle()
  t.strictSame(sent(), ['joined a'], 'the leave is held')
  clock.set(T0 + 35_000)
  await until('the first leave and the join behind it', () => (sent().length === 3 ? true : undefined))
  t.strictSame(sent(), ['joined a', 'left a', 'joined a'], '5.001 s apart: both, in order; the last leave still held')
  clock.set(T0 + 41_000)
  await until('the last leave', () => (sent().length === 4 ? true : undefined))
  t.strictSame(sent(), ['joined a', 'left a', 'joined a', 'left a'])
})

t.test("a held leave does not hold other contacts' events", async (t) => {
  const { append, sent } = await setup(t, 5_000)
  append('end', 'a', T0)
  append('join', 'b', T0 + 1)
  await until("b's join", () => (sent().length === 1 ? true : undefined))
  t.strictSame(sent(), ['joined b'])
})

t.test('a failing receiver is retried with doubling backoff, then gets the batch unchanged', async (t) => {
  let up = false
  const { clock, append, sent, attempts } = await setup(t, 0, () => up)
  append('join', 'a', T0)
  await until('the first attempt', () => (attempts() === 1 ? true : undefined))
  await settle()
  t.equal(attempts(), 1, 'no attempt before the backoff is over')
  for (const [step, expected] of [[1_000, 2], [2_000, 3], [4_000, 4], [8_000, 5], [8_000, 6]] as const) {
    clock.advance(step - 1)
    await settle(50)
    t.equal(attempts(), expected - 1, `not yet after ${step - 1} ms`)
    clock.advance(1)
    await until(`attempt ${expected}`, () => (attempts() === expected ? true : undefined))
  }
  up = true
  clock.advance(8_000)
  await until('the delivery', () => (sent().length === 1 ? true : undefined))
  t.strictSame(sent(), ['joined a'])
})
