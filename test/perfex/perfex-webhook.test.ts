/**
 * The Perfex module's webhook receiver (libraries/CatWebhook.php, run by tests/webhook.php
 * against stand-ins for Perfex's functions): it accepts what the real server signs, refuses
 * forged, unsigned and replayed POSTs, notifies the customer's assigned staff with the names
 * escaped, and at most once per contact in ten minutes.
 */
import t from 'tap'
import { createHmac } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { buildTestApp, clientToken, createClock, ensureConsent, heartbeatUrl, until } from '../helpers/app.js'
import { findProjectRoot } from '../../src/activity/database.js'

const RUNNER = join(findProjectRoot(), 'client-snippet', 'perfex', 'tests', 'webhook.php')
const SECRET = 'perfex-webhook-secret-0123'
const NOW = 1_800_000_000

const version = spawnSync('php', ['--version'], { encoding: 'utf8' })
if (version.error !== undefined || version.status !== 0) throw new Error('php is missing: run scripts/test-services.sh (apt-get install php-cli)')

interface Request {
  header: string | null
  body: string
  now: number
}
interface Outcome {
  responses: [number, Record<string, unknown>][]
  notifications: { description: string; touserid: number; fromcompany: number; link: string; additional_data: string }[]
  pushed: number[][]
  descriptions: string[]
  options: Record<string, string>
}

/**
 * Runs the receiver. `options` are as an admin enters them (tests/webhook.php stores the webhook
 * secret encrypted, as the settings page does); `rawOptions` go into the options table as they are.
 */
function run(requests: Request[], admins: Record<string, number[]> = { 'client-7': [3, 5] }, options: Record<string, string> = { cat_webhook_secret: SECRET }, rawOptions: Record<string, string> = {}): Outcome {
  const env = { ...process.env }
  delete env.CAT_WEBHOOK_SECRET
  const res = spawnSync('php', [RUNNER, JSON.stringify({ options, rawOptions, admins, requests })], { encoding: 'utf8', env })
  if (res.status !== 0) throw new Error(`php exited ${res.status}: ${res.stderr}`)
  return JSON.parse(res.stdout) as Outcome
}

function sign(body: string, at = NOW, secret = SECRET): string {
  return `t=${at},v1=${createHmac('sha256', secret).update(`${at}.${body}`).digest('hex')}`
}

function batch(events: Record<string, unknown>[]): string {
  return JSON.stringify({ id: 'b1', sentAt: NOW * 1000, events })
}

const maria = { id: '1-0-3', type: 'joined', contactId: '42', clientId: 'client-7', name: 'Maria <b>Schneider</b>', company: 'Nordwind & "Logistik"', path: '/clients', at: NOW * 1000 }

t.test('a signed joined notifies the assigned staff, names escaped, from the company', async (t) => {
  const body = batch([maria])
  const out = run([{ header: sign(body), body, now: NOW }])
  t.strictSame(out.responses, [[200, { ok: true }]])
  t.equal(out.notifications.length, 2)
  t.strictSame(out.notifications.map((n) => n.touserid), [3, 5])
  for (const n of out.notifications) t.match(n, { fromcompany: 1, link: 'clients/client/client-7', description: 'cat_notification_on_portal' })
  t.strictSame(out.descriptions[0], 'Maria &lt;b&gt;Schneider&lt;/b&gt; of Nordwind &amp; &quot;Logistik&quot; is on the portal now')
  t.strictSame(out.pushed, [[3, 5]], 'one push to the notified staff')
})

t.test('forged, unsigned, old and other-secret POSTs are refused and notify nobody', async (t) => {
  const body = batch([maria])
  const forged = body.replace('Maria', 'Mallory')
  const out = run([
    { header: null, body, now: NOW },
    { header: 'garbage', body, now: NOW },
    { header: sign(body), body: forged, now: NOW },
    { header: sign(body, NOW, 'another-secret-0123456789'), body, now: NOW },
    { header: sign(body, NOW - 301), body, now: NOW },
    { header: sign(body, NOW + 301), body, now: NOW },
  ])
  t.strictSame(out.responses.map(([status]) => status), [401, 401, 401, 401, 401, 401])
  t.equal(out.notifications.length, 0)
  t.strictSame(out.pushed, [])
  t.strictSame(run([{ header: sign(body), body, now: NOW }], undefined, {}).responses[0]?.[0], 503, 'no secret configured: 503')
  const notBatch = '{"hello":1}'
  t.strictSame(run([{ header: sign(notBatch), body: notBatch, now: NOW }]).responses[0]?.[0], 400)
})

t.test('the webhook secret is stored encrypted and used decrypted; one stored in plain text is not used', async (t) => {
  const body = batch([maria])
  const out = run([{ header: sign(body), body, now: NOW }])
  t.strictSame(out.responses, [[200, { ok: true }]], 'the encrypted secret verifies the signature')
  t.notMatch(out.options.cat_webhook_secret ?? '', SECRET, 'the option does not hold the secret in plain text')
  t.ok((out.options.cat_webhook_secret ?? '').length > 128, 'it holds CI_Encryption ciphertext')
  t.strictSame(run([{ header: sign(body), body, now: NOW }], undefined, {}, { cat_webhook_secret: SECRET }).responses[0]?.[0], 503, 'a plain value does not decrypt: no secret, 503')
})

t.test('one notification per contact in ten minutes; left and unassigned customers notify nobody', async (t) => {
  const first = batch([maria])
  const again = batch([{ ...maria, id: '2-0-3' }])
  const later = batch([{ ...maria, id: '3-0-3' }])
  const other = batch([{ ...maria, id: '4-0-3', type: 'left', reason: 'leave' }, { ...maria, id: '5-0-3', contactId: '99', clientId: 'client-none' }])
  const out = run([
    { header: sign(first), body: first, now: NOW },
    { header: sign(again, NOW + 60), body: again, now: NOW + 60 },
    { header: sign(other, NOW + 120), body: other, now: NOW + 120 },
    { header: sign(later, NOW + 601), body: later, now: NOW + 601 },
  ])
  t.strictSame(out.responses.map(([status]) => status), [200, 200, 200, 200])
  t.equal(out.notifications.length, 4, 'two staff at the first arrival, two again after ten minutes')
  t.strictSame(out.pushed, [[3, 5], [3, 5]])
})

t.test("the real server's webhook verifies in the Perfex receiver", async (t) => {
  const received: { headers: IncomingHttpHeaders; body: string }[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const clock = createClock(Date.now())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client_activity_tracker/cat_webhook`
  const app = await buildTestApp(t, { now: clock.now, env: { CAT_WEBHOOK_URL: url, CAT_WEBHOOK_SECRET: SECRET, CAT_WEBHOOK_DEBOUNCE_S: '0' } })
  const token = clientToken({ sub: '42', clientId: 'client-7', name: 'Maria Schneider', company: 'Nordwind Logistik' }, clock.now())
  await ensureConsent(app, token)
  t.equal((await app.inject(heartbeatUrl({ token, sid: 'perfex-tab-0001', event: 'nav', path: '/clients', title: '' }))).statusCode, 204)
  const post = await until('the webhook', () => received[0])
  const out = run([{ header: String(post.headers['cat-signature']), body: post.body, now: Math.floor(clock.now() / 1000) }])
  t.strictSame(out.responses, [[200, { ok: true }]])
  t.strictSame(out.descriptions, ['Maria Schneider of Nordwind Logistik is on the portal now', 'Maria Schneider of Nordwind Logistik is on the portal now'])
})
