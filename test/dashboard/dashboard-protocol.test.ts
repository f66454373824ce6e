/**
 * The widget's side of the /admin/ws protocol, in headless Chromium against a scripted server
 * (a plain node http + ws server standing in for the presence server), so the cases a real
 * server rarely produces can be played on cue: a seq gap, a diff repeating a snapshot, a
 * contact in `left` and `joined` of one diff, close code 1012, refused reconnects and their backoff.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { type Page } from 'playwright-core'
import { findProjectRoot } from '../../src/activity/database.js'
import { launchChromium } from '../helpers/browser.js'

const widgetJs = readFileSync(join(findProjectRoot(), 'dashboard', 'dist', 'widget.js'))

interface Conn {
  ws: WebSocket
  received: string[]
  send(message: object): void
  waitForMessage(text: string, timeoutMs?: number): Promise<void>
}

const upgrades: number[] = []
const conns: Conn[] = []
const waiting: (() => void)[] = []
/** How many of the next upgrades are refused with 503 (the probe then says 503 too). */
let refuse = 0
let origin = ''

const wss = new WebSocketServer({ noServer: true })
const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname === '/widget.js') return void res.writeHead(200, { 'content-type': 'application/javascript' }).end(widgetJs)
  if (url.pathname === '/admin/api/stats/online') {
    if (refuse > 0) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"unavailable","message":"down"}}')
    return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"points":[]}')
  }
  if (url.pathname === '/healthz') return void res.writeHead(200).end('{"status":"ok"}')
  if (url.pathname === '/') {
    return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><script src="/widget.js"></script></head>
<body><cat-online-clients server="${origin}" token="scripted-token"></cat-online-clients></body></html>`)
  }
  res.writeHead(404).end()
})
http.on('upgrade', (req, socket, head) => {
  upgrades.push(Date.now())
  if (!req.url?.startsWith('/admin/ws?token=scripted-token')) return void socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  if (refuse > 0) {
    refuse--
    return void socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const received: string[] = []
    const wake: (() => void)[] = []
    ws.on('message', (data) => {
      received.push(data.toString())
      for (const fn of wake.splice(0)) fn()
    })
    conns.push({
      ws,
      received,
      send: (message) => ws.send(JSON.stringify(message)),
      waitForMessage: (text, timeoutMs = 3000) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ${text} within ${timeoutMs} ms; got ${JSON.stringify(received)}`)), timeoutMs)
          const check = (): void => {
            if (received.includes(text)) {
              clearTimeout(timer)
              resolve()
            } else wake.push(check)
          }
          check()
        }),
    })
    for (const fn of waiting.splice(0)) fn()
  })
})
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
t.teardown(() => {
  for (const client of wss.clients) client.terminate()
  return new Promise<void>((resolve) => http.close(() => resolve()))
})

/** Resolves with the nth accepted connection (1-based) once it exists. */
function connection(n: number, timeoutMs = 10_000): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection #${n} within ${timeoutMs} ms (${conns.length} so far)`)), timeoutMs)
    const check = (): void => {
      const conn = conns[n - 1]
      if (conn !== undefined) {
        clearTimeout(timer)
        resolve(conn)
      } else waiting.push(check)
    }
    check()
  })
}

const NOW = Date.now()
function presence(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { contactId: id, clientId: `k-${id}`, name: `Name ${id}`, company: `Company ${id}`, path: `/p/${id}`, title: `Title ${id}`, state: 'active', since: NOW, lastSeen: NOW, tabs: 1, ...extra }
}

const browser = await launchChromium(t)
const context = await browser.newContext({ locale: 'en-US' })
const page: Page = await context.newPage()
t.teardown(() => context.close())

const ids = (): Promise<string[]> => page.locator('cat-online-clients li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.id ?? '').sort())
const waitIds = async (expected: string[]): Promise<void> => {
  await page.waitForFunction((want) => {
    const lis = document.querySelector('cat-online-clients')?.shadowRoot?.querySelectorAll('li') ?? []
    return JSON.stringify([...lis].map((li) => li.dataset.id).sort()) === JSON.stringify(want)
  }, [...expected].sort(), { timeout: 3000 }).catch(async (error: unknown) => {
    throw new Error(`rows ${JSON.stringify(await ids())}, expected ${JSON.stringify(expected)}: ${String(error)}`)
  })
}
const state = (kind: string, timeout = 5000): Promise<void> => page.locator(`cat-online-clients[data-state="${kind}"]`).waitFor({ timeout })

t.test('snapshot, diffs in order, a gap asks for a resync and ignores diffs until the snapshot', async (t) => {
  await page.goto(`${origin}/`)
  const first = await connection(1)
  first.send({ type: 'snapshot', seq: 1, at: Date.now(), online: [presence('a')] })
  await state('live')
  await waitIds(['a'])
  first.send({ type: 'diff', seq: 2, at: Date.now(), joined: [presence('b')], updated: [], left: [] })
  await waitIds(['a', 'b'])
  t.equal(first.received.length, 0, 'nothing sent while in order')

  first.send({ type: 'diff', seq: 4, at: Date.now(), joined: [presence('c')], updated: [], left: [] })
  await first.waitForMessage('{"type":"resync"}')
  t.pass('seq 2 → 4: the widget asked for a resync')
  first.send({ type: 'diff', seq: 5, at: Date.now(), joined: [presence('d')], updated: [], left: [] })
  first.send({ type: 'snapshot', seq: 6, at: Date.now(), online: [presence('a'), presence('b'), presence('e')] })
  await waitIds(['a', 'b', 'e'])
  t.pass('the gap diff and the diff before the snapshot were not applied; the snapshot was')

  // left first, then joined, then updated: a contact that left and came back stays; a left of
  // someone unknown is ignored; a joined repeating what the snapshot holds is an upsert.
  first.send({
    type: 'diff',
    seq: 7,
    at: Date.now(),
    left: [{ contactId: 'a', at: Date.now(), reason: 'timeout' }, { contactId: 'zz', at: Date.now(), reason: 'leave' }],
    joined: [presence('a', { path: '/back/again', title: 'Back again' }), presence('e')],
    updated: [presence('b', { state: 'idle' })],
  })
  await page.locator('cat-online-clients li[data-id="a"]').getByText('/back/again', { exact: true }).waitFor({ timeout: 3000 })
  await page.locator('cat-online-clients li[data-id="b"] .badge.idle').waitFor({ timeout: 3000 })
  t.same(await ids(), ['a', 'b', 'e'], 'a left and joined in one diff: still there, with its new page')
  t.equal(first.received.length, 1, 'only the one resync was sent')
})

t.test("the element's lang attribute picks the language (before the page's), and dates and durations follow it", async (t) => {
  const widget = page.locator('cat-online-clients')
  await widget.evaluate((el) => el.setAttribute('lang', 'fr-CA'))
  t.equal(await widget.locator('h2').textContent(), 'Clients en ligne')
  t.equal(await widget.locator('li[data-id="a"] .badge').textContent(), 'Actif')
  t.ok(await widget.locator('li[data-id="b"] .badge.idle', { hasText: 'Inactif' }).isVisible())
  t.same(await widget.locator('li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.id).sort()), ['a', 'b', 'e'], 'the rows survive the switch')
  const seen = await widget.locator('li[data-id="a"] .seen').getAttribute('title')
  t.match(seen, /\d{4}/, `last seen as a French date: ${seen}`)
  t.equal(seen, await page.evaluate((at) => new Intl.DateTimeFormat('fr-CA', { dateStyle: 'medium', timeStyle: 'short' }).format(at), NOW))
  await widget.evaluate((el) => el.setAttribute('lang', 'xx'))
  t.equal(await widget.locator('h2').textContent(), 'Clients online', 'an unknown language: the page\'s (<html lang="en">)')
  await widget.evaluate((el) => el.removeAttribute('lang'))
  t.equal(await widget.locator('h2').textContent(), 'Clients online')
})

t.test('close code 1012 reconnects at once; another close backs off with jitter, growing, until a connection holds', async (t) => {
  const first = await connection(1)
  const closedAt = Date.now()
  first.ws.close(1012, 'service restart')
  const second = await connection(2)
  const after1012 = upgrades[1]! - closedAt
  t.ok(after1012 < 400, `after 1012 the next upgrade came after ${after1012} ms`)
  second.send({ type: 'snapshot', seq: 1, at: Date.now(), online: [presence('a'), presence('b')] })
  await waitIds(['a', 'b'])
  await state('live')

  // 1011 (an error): reconnect with backoff. The next two upgrades are refused (503).
  refuse = 2
  const dropped = Date.now()
  second.ws.close(1011, 'oops')
  await state('disconnected')
  t.ok(await page.locator('cat-online-clients li[data-id="a"]').isVisible(), 'the last known rows stay, dimmed, while disconnected')
  const third = await connection(3, 15_000)
  const gaps = [upgrades[2]! - dropped, upgrades[3]! - upgrades[2]!, upgrades[4]! - upgrades[3]!]
  t.comment(`reconnect delays: ${gaps.join(' ms, ')} ms`)
  const slack = 800
  t.ok(gaps[0]! >= 500 && gaps[0]! <= 1000 + slack, `1st retry after ${gaps[0]} ms (0.5–1 s)`)
  t.ok(gaps[1]! >= 1000 && gaps[1]! <= 2000 + slack, `2nd retry after ${gaps[1]} ms (1–2 s)`)
  t.ok(gaps[2]! >= 2000 && gaps[2]! <= 4000 + slack, `3rd retry after ${gaps[2]} ms (2–4 s)`)
  third.send({ type: 'snapshot', seq: 1, at: Date.now(), online: [presence('b')] })
  await state('live')
  await waitIds(['b'])
  t.pass('live again, with the new snapshot')

  // A connection that held resets the backoff: the next drop retries within a second again.
  const again = Date.now()
  third.ws.close(1011, 'oops')
  const fourth = await connection(4)
  const retry = upgrades[5]! - again
  t.ok(retry <= 1000 + slack, `after a good connection the backoff starts over (${retry} ms)`)
  fourth.send({ type: 'snapshot', seq: 1, at: Date.now(), online: [] })
  await state('live')
  await page.getByText('Nobody is online right now.', { exact: true }).waitFor()
})
