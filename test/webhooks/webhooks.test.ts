/**
 * Presence webhooks end to end: heartbeats → presence engine → event log → the webhooks'
 * consumer group → a signed POST to a real receiver (a Node HTTP server on loopback) that
 * checks every signature. Real Redis; the clock is injected, so debounce, backoff and the
 * retry horizon pass without sleeping; the receiver really refuses connections while down.
 */
import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { REDIS_URL, buildTestApp, cleanRedisSite, clientToken, createClock, ensureConsent, heartbeatUrl, uniqueSite, until } from '../helpers/app.js'
import { startInstance } from '../helpers/instance.js'
import { createTestDataDir } from '../helpers/database.js'
import { siteKeys } from '../../src/presence/redis/keys.js'
import type { WebhookBatch, WebhookEvent } from '../../src/webhooks/webhook-event.js'

const WEBHOOK_SECRET = 'webhook-secret-0123456789'
const T0 = 1_800_000_000_000
type Clock = ReturnType<typeof createClock>

/** What the receiver is sent: the batch as the service describes it (the test checks each field it reads). */
type SentEvent = WebhookEvent
interface Received {
  headers: IncomingHttpHeaders
  body: string
  batch: WebhookBatch
}

interface Receiver {
  url: string
  received: Received[]
  /** The POSTs whose signature did not verify with the secret (none may arrive). */
  forged: Received[]
  events(): SentEvent[]
  status: number
  /** Stops listening and cuts kept-alive connections: connecting is refused. */
  down(): Promise<void>
  up(): Promise<void>
}

/** Verifies CAT-Signature as a receiver would, with nothing of the server's code. */
function signedWith(secret: string, received: { headers: IncomingHttpHeaders; body: string }): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(received.headers['cat-signature'] ?? ''))
  if (match === null) return false
  return createHmac('sha256', secret).update(`${match[1]}.${received.body}`).digest('hex') === match[2]
}

async function startReceiver(t: Test): Promise<Receiver> {
  let server: Server | undefined
  let port = 0
  const receiver: Receiver = {
    url: '',
    received: [],
    forged: [],
    status: 200,
    events: () => receiver.received.flatMap((r) => r.batch.events),
    async down() {
      const s = server
      server = undefined
      if (s === undefined) return
      s.closeAllConnections()
      await new Promise((resolve) => s.close(resolve))
    },
    async up() {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (chunk: Buffer) => chunks.push(chunk))
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          const entry = { headers: req.headers, body, batch: JSON.parse(body) as Received['batch'] }
          if (!signedWith(WEBHOOK_SECRET, entry)) {
            receiver.forged.push(entry)
            res.statusCode = 401
          } else {
            res.statusCode = receiver.status
            if (receiver.status < 300) receiver.received.push(entry)
          }
          res.end()
        })
      })
      await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve))
      port = (s.address() as AddressInfo).port
      receiver.url = `http://127.0.0.1:${port}/hooks/cat?source=test`
      server = s
    },
  }
  await receiver.up()
  t.teardown(() => receiver.down())
  return receiver
}

function webhookEnv(receiver: Receiver, debounceS = 5): Record<string, string> {
  return { CAT_WEBHOOK_URL: receiver.url, CAT_WEBHOOK_SECRET: WEBHOOK_SECRET, CAT_WEBHOOK_DEBOUNCE_S: String(debounceS) }
}

/** Short real-time backoff: the clock is injected, the loop only needs to look again soon. */
const FAST = { retryMinMs: 1_000, retryMaxMs: 5_000, waitMs: 20, leaseMs: 3_000 }

async function beat(app: FastifyInstance, clock: Clock, sub: string, event: string, extra: { sid?: string; path?: string; clientId?: string } = {}): Promise<void> {
  const token = clientToken({ sub, clientId: extra.clientId ?? 'client-1', name: `Name ${sub}`, company: 'Nordwind <Logistik>' }, clock.now())
  await ensureConsent(app, token)
  const res = await app.inject(heartbeatUrl({ token, sid: extra.sid ?? `tab-${sub}-1`, event, path: extra.path ?? '/clients', title: '' }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

async function redisApp(t: Test, clock: Clock, receiver: Receiver, debounceS = 5, logStream?: Writable, env: Record<string, string> = {}): Promise<{ app: FastifyInstance; site: string }> {
  const site = uniqueSite('webhooks')
  cleanRedisSite(t, site)
  const app = await buildTestApp(t, { site, now: clock.now, env: { ...webhookEnv(receiver, debounceS), ...env }, webhookTimings: FAST, ...(logStream === undefined ? {} : { logStream }) })
  return { app, site }
}

/** Lets the deliverer's loop run for `ms` of real time (nothing should arrive meanwhile). */
const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function streamLength(site: string): Promise<number> {
  const redis = new Redis(REDIS_URL)
  try {
    let total = 0
    for (const key of await redis.keys(`cat:{${site}:*}:*`)) if ((await redis.type(key)) === 'stream') total += await redis.xlen(key)
    return total
  } finally {
    redis.disconnect()
  }
}

async function pendingInGroup(site: string): Promise<number> {
  const redis = new Redis(REDIS_URL)
  try {
    let total = 0
    for (const key of await redis.keys(`cat:{${site}:*}:*`)) {
      if ((await redis.type(key)) !== 'stream') continue
      const summary = (await redis.xpending(key, 'cat-webhooks')) as [number, ...unknown[]]
      total += summary[0]
    }
    return total
  } finally {
    redis.disconnect()
  }
}

t.test('a join and a leave: each delivered once, signed, in a batch of the documented shape, with the log id', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const { app, site } = await redisApp(t, clock, receiver)

  await beat(app, clock, 'maria', 'nav', { path: '/clients/invoices', clientId: 'client-7' })
  const joined = await until('the joined event', () => receiver.events().find((e) => e.type === 'joined'))
  const logJoin = (await app.eventLog.tail(10)).find((e) => e.type === 'join')
  t.strictSame(joined, { id: logJoin?.id, type: 'joined', contactId: 'maria', clientId: 'client-7', name: 'Name maria', company: 'Nordwind <Logistik>', path: '/clients/invoices', at: T0 })

  clock.advance(2_000)
  await beat(app, clock, 'maria', 'leave', { path: '/clients/invoices', clientId: 'client-7' })
  await settle(300)
  t.equal(receiver.events().length, 1, 'the leave waits for the debounce')
  clock.advance(5_000)
  const left = await until('the left event', () => receiver.events().find((e) => e.type === 'left'))
  t.match(left, { type: 'left', contactId: 'maria', clientId: 'client-7', name: 'Name maria', company: 'Nordwind <Logistik>', path: '/clients/invoices', at: T0 + 2_000, reason: 'leave' })
  t.not(left.id, joined.id)

  await settle(500)
  t.strictSame(receiver.events().map((e) => e.type), ['joined', 'left'], 'each once')
  t.equal(receiver.forged.length, 0)
  for (const r of receiver.received) {
    t.ok(signedWith(WEBHOOK_SECRET, r), 'the signature verifies with the secret')
    t.notOk(signedWith('another-secret-0123456789', r), 'and with no other')
    t.match(r.headers['content-type'], /^application\/json/)
    t.match(r.batch, { id: /^[0-9a-f]{32}$/, sentAt: Number })
    t.strictSame(Object.keys(r.batch).sort(), ['events', 'id', 'sentAt'])
    const t0 = Number(/t=(\d+)/.exec(String(r.headers['cat-signature']))?.[1])
    t.equal(t0, Math.floor(r.batch.sentAt / 1000), 't is the send time in unix seconds')
  }
  t.equal(await pendingInGroup(site), 0, 'everything delivered is acknowledged')
  const metrics = await app.inject('/metrics')
  t.match(metrics.body, /cat_webhook_delivered_total 2\b/)
})

t.test('a reload (a leave, then a join within the debounce) sends nothing', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const { app, site } = await redisApp(t, clock, receiver)
  await beat(app, clock, 'ann', 'nav')
  await until('the first join', () => (receiver.events().length === 1 ? true : undefined))

  clock.advance(1_000)
  await beat(app, clock, 'ann', 'leave')
  clock.advance(800)
  await beat(app, clock, 'ann', 'nav', { sid: 'tab-ann-2' })
  await settle(300)
  clock.advance(60_000)
  await settle(800)
  t.strictSame(receiver.events().map((e) => e.type), ['joined'], 'only the first arrival')
  t.equal(await pendingInGroup(site), 0, 'the cancelled pair is acknowledged')

  // A leave that stays longer than the debounce is sent.
  await beat(app, clock, 'ann', 'leave', { sid: 'tab-ann-2' })
  clock.advance(6_000)
  await until('the real leave', () => receiver.events().find((e) => e.type === 'left'))
  t.strictSame(receiver.events().map((e) => e.type), ['joined', 'left'])
})

t.test("a contact's events keep their order", async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const { app } = await redisApp(t, clock, receiver, 0)
  const contacts = ['c1', 'c2', 'c3', 'c4']
  for (let round = 0; round < 5; round += 1) {
    for (const contact of contacts) {
      clock.advance(10)
      await beat(app, clock, contact, 'nav', { sid: `tab-${contact}-${round}` })
    }
    for (const contact of contacts) {
      clock.advance(10)
      await beat(app, clock, contact, 'leave', { sid: `tab-${contact}-${round}` })
    }
  }
  await until('every event', () => (receiver.events().length >= 40 ? true : undefined))
  for (const contact of contacts) {
    const mine = receiver.events().filter((e) => e.contactId === contact)
    t.strictSame(mine.map((e) => e.type), Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'joined' : 'left')), `${contact}: joined, left, … in order`)
    t.ok(mine.every((e, i) => i === 0 || e.at > (mine[i - 1] as SentEvent).at), `${contact}: times ascending`)
  }
})

t.test('the receiver down for 30 s, then back: every event arrives at least once, and nothing unsigned', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const { app, site } = await redisApp(t, clock, receiver, 0)
  await receiver.down()
  for (const contact of ['d1', 'd2', 'd3']) await beat(app, clock, contact, 'nav')
  await beat(app, clock, 'd1', 'leave')
  // 30 s of the injected clock while connections are refused: the deliverer retries with backoff.
  for (let i = 0; i < 30; i += 1) {
    clock.advance(1_000)
    await settle(40)
  }
  // The activity writer writes them meanwhile: the entries stay in the streams for the webhooks.
  while ((await app.activityWriter.writeOnce(0)) > 0);
  t.equal(await streamLength(site), 4, 'written, not yet delivered: the four kept')
  const failures = await app.inject('/metrics')
  const failed = Number(/cat_webhook_failures_total (\d+)/.exec(failures.body)?.[1])
  t.ok(failed >= 3 && failed <= 20, `retried with backoff while down (${failed} attempts in 30 s)`)
  t.equal(receiver.received.length, 0)

  await receiver.up()
  clock.advance(10_000)
  await until('every event after the receiver is back', () => (receiver.events().length >= 4 ? true : undefined))
  const ids = new Set(receiver.events().map((e) => `${e.type} ${e.contactId}`))
  t.strictSame([...ids].sort(), ['joined d1', 'joined d2', 'joined d3', 'left d1'])
  t.equal(receiver.forged.length, 0, 'no forged or unsigned POST')
  t.equal(await pendingInGroup(site), 0)
  t.equal(await streamLength(site), 0, 'written and delivered: gone from the streams')
})

t.test('a batch the receiver refuses for the whole retry horizon is dropped, counted and logged without the secret', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  receiver.status = 503
  let logged = ''
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString()
      done()
    },
  })
  const { app, site } = await redisApp(t, clock, receiver, 0, logStream, { LOG_LEVEL: 'warn' })
  await beat(app, clock, 'gone', 'nav')
  await until('the first failure', async () => (/cat_webhook_failures_total [1-9]/.test((await app.inject('/metrics')).body) ? true : undefined))
  const failedAt = clock.now()
  // A minute of the clock at each look: the batch fails on, until the horizon is over.
  await until('the drop', async () => {
    clock.advance(60_000)
    return /cat_webhook_dropped_total 1\b/.test((await app.inject('/metrics')).body) ? true : undefined
  }, 30_000)
  t.ok(clock.now() - failedAt >= 3_600_000, 'not before an hour of failures')
  t.equal(await pendingInGroup(site), 0, 'the dropped event leaves the group')
  t.match(logged, /these events are dropped/)
  t.notMatch(logged, WEBHOOK_SECRET)
  receiver.status = 200
  await settle(500)
  t.equal(receiver.received.length, 0, 'a dropped event is not sent again')
})

t.test('the memory engine delivers from its own event log', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const app = await buildTestApp(t, { now: clock.now, env: webhookEnv(receiver, 0), webhookTimings: FAST })
  await beat(app, clock, 'mem', 'nav')
  clock.advance(1_000)
  await beat(app, clock, 'mem', 'leave')
  await until('both events', () => (receiver.events().length >= 2 ? true : undefined))
  t.match(receiver.events(), [{ type: 'joined', contactId: 'mem' }, { type: 'left', contactId: 'mem', reason: 'leave' }])
  await settle(300)
  t.equal(receiver.events().length, 2)
})

t.test('kill -9 of the delivering instance while it holds a leave: the other instance delivers it', async (t) => {
  const receiver = await startReceiver(t)
  const site = uniqueSite('webhooks-kill')
  cleanRedisSite(t, site)
  const env = (name: string): Record<string, string> => ({ REDIS_URL, CAT_SITE: site, CAT_DATA_DIR: createTestDataDir(t, name), ...webhookEnv(receiver, 3) })
  const first = await startInstance(t, env('first'))
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const leaseKey = siteKeys(site).webhookLease
  const holder = await until('the first instance holds the lease', async () => (await redis.get(leaseKey)) ?? undefined)
  const second = await startInstance(t, env('second'))

  const token = clientToken({ sub: 'killed', name: 'Maria Schneider', company: 'Nordwind Logistik' })
  const consent = await fetch(`${second.origin}/clients/cat_consent`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token, decision: 'granted', version: 'v', locale: 'en' }) })
  t.equal(consent.status, 204)
  const hb = (event: string): Promise<Response> => fetch(`${second.origin}${heartbeatUrl({ token, sid: 'tab-killed-1', event, path: '/clients', title: '' })}`)
  t.equal((await hb('nav')).status, 204)
  await until('the join, delivered by the first instance', () => receiver.events().find((e) => e.type === 'joined'))
  t.equal(await redis.get(leaseKey), holder, 'the first instance delivers')

  t.equal((await hb('leave')).status, 204)
  await settle(300)
  first.signal('SIGKILL')
  await first.exited
  t.equal(receiver.events().filter((e) => e.type === 'left').length, 0, 'the leave was held, not sent, when the instance died')

  const left = await until('the leave, delivered by the second instance', () => receiver.events().find((e) => e.type === 'left'), 30_000)
  t.match(left, { contactId: 'killed', name: 'Maria Schneider', company: 'Nordwind Logistik', reason: 'leave' })
  t.not(await redis.get(leaseKey), holder, 'the lease changed hands')
  await settle(500)
  t.strictSame(receiver.events().map((e) => e.type), ['joined', 'left'], 'each event once, though two instances ran')
  t.equal(receiver.forged.length, 0)
  t.equal(await pendingInGroup(site), 0)
})

t.test('webhooks turned off: their group goes, and the written entries that waited for it leave the streams', async (t) => {
  const clock = createClock(T0)
  const receiver = await startReceiver(t)
  const { app, site } = await redisApp(t, clock, receiver, 0)
  await receiver.down()
  await beat(app, clock, 'off', 'nav')
  await settle(200)
  while ((await app.activityWriter.writeOnce(0)) > 0);
  t.ok((await streamLength(site)) > 0, 'kept for the webhooks')
  await app.close()

  const off = await buildTestApp(t, { site, now: clock.now })
  t.equal(await streamLength(site), 0, 'gone once the webhooks are off')
  await beat(off, clock, 'off2', 'nav')
  while ((await off.activityWriter.writeOnce(0)) > 0);
  t.equal(await streamLength(site), 0, 'and new entries leave as they are written')
})
