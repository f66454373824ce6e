/**
 * The consent snippet in real headless Chromium (Debian's, driven by playwright-core) against a
 * running server with real Redis, from a portal page on another origin.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Browser, BrowserContext, Page, Request, Route } from 'playwright-core'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, uniqueSite, until } from '../helpers/app.js'
import { connectDashboard, wsBase, type Message } from '../helpers/ws.js'
import { findProjectRoot } from '../../src/activity/database.js'
import type { CatStringKey } from '../../client-snippet/src/strings.js'
import { launchChromium } from '../helpers/browser.js'

const INTERVAL_MS = 1000
// "No request in the next interval": the page's clock run 1.5 intervals ahead (the loop jitters ±10 %).
const QUIET_MS = INTERVAL_MS * 1.5

const root = findProjectRoot()
const en = JSON.parse(readFileSync(join(root, 'client-snippet', 'lang', 'en.json'), 'utf8')) as Record<CatStringKey, string>

// scripts/test-services.sh installs it; a missing browser is a failure, not a skip.
// The server serves client-snippet/dist/snippet.js: built from the current source first
// (the build replaces the file atomically, so the size test may build it at the same time).
execFileSync(process.execPath, [join(root, 'client-snippet', 'build.mjs')], { stdio: 'inherit' })

interface Portal {
  origin: string
  /** The snippet's server, once it listens. */
  server: string
  /** The client token the next page load embeds. */
  token: string
  /** Query string of the snippet's URL in the next page load, e.g. `?lang=de`. */
  query: string
}

/** A portal on its own origin: every path gets the same page, embedding the snippet by its absolute URL. */
async function startPortal(): Promise<{ portal: Portal; http: Server }> {
  const portal: Portal = { origin: '', server: '', token: '', query: '' }
  const http = createServer((req, res) => {
    if (req.url === '/favicon.ico') return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Portal home</title>
<style>
  /* A hostile portal stylesheet: the banner must not be affected. */
  body { font: 40px/3 serif; color: red; }
  div, button, p { display: none !important; }
</style></head>
<body><h1>Customer portal</h1>
<label>Search <input id="search"></label>
<span>Tracking: <span data-cat-control>(loading)</span></span>
<section style="height: 150vh"></section>
<a id="deep" href="#deep">Deep link</a>
<section style="height: 100vh"></section>
<script src="${portal.server}/clients/cat_consent_js${portal.query}" data-token="${portal.token}" defer></script>
</body></html>`)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  portal.origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return { portal, http }
}

const { portal, http } = await startPortal()
t.teardown(() => new Promise<void>((resolve) => http.close(() => resolve())))

const site = uniqueSite('snippet')
cleanRedisSite(t, site)
const app = await buildTestApp(t, {
  site,
  env: { CAT_HEARTBEAT_INTERVAL_S: '1', CAT_PRESENCE_TIMEOUT_S: '5', CAT_ALLOWED_ORIGINS: portal.origin },
})
portal.server = (await wsBase(app)).replace(/^ws:/, 'http:')
const dash = await connectDashboard(app, adminToken())
t.teardown(() => dash.close())
await dash.waitFor((m) => m.type === 'snapshot')

const browser: Browser = await launchChromium(t)

interface Visit {
  context: BrowserContext
  page: Page
  sub: string
  token: string
  /** Every request the page made to the snippet's server, in order. */
  requests: Request[]
  /** Requests to anywhere but the portal and the snippet's server: there must be none. */
  foreign: string[]
}

function newContact(): { sub: string; token: string } {
  const sub = `contact-${randomBytes(4).toString('hex')}`
  return { sub, token: clientToken({ sub, clientId: 'client-7', name: 'Ann Example', company: 'Acme Ltd' }) }
}

interface VisitOptions {
  gpc?: boolean
  context?: BrowserContext
  contact?: { sub: string; token: string }
  /**
   * The page's timers and Date on Playwright's clock: `flowing` runs as time does, and the
   * test may run it ahead (runFor); `paused` stands still from the page load on, but for
   * runFor. Only for a new context (the clock belongs to it).
   */
  clock?: 'flowing' | 'paused'
  /** What Math.random gives in the page, in order (then random again). */
  random?: number[]
}

/** Opens a page of the portal in a fresh browser context (its own localStorage). */
async function visit(tt: { teardown(fn: () => unknown): void }, options: VisitOptions = {}): Promise<Visit> {
  const context = options.context ?? (await browser.newContext({ viewport: { width: 1000, height: 700 } }))
  if (options.context === undefined) tt.teardown(() => context.close())
  if (options.gpc === true) await context.addInitScript(() => Object.defineProperty(navigator, 'globalPrivacyControl', { get: () => true }))
  const installed = Date.now()
  if (options.clock !== undefined) await context.clock.install({ time: installed })
  const page = await context.newPage()
  await page.addInitScript(recordRequests)
  if (options.random !== undefined) {
    await page.addInitScript((values: number[]) => {
      const random = Math.random
      Math.random = () => values.shift() ?? random()
    }, options.random)
  }
  const requests: Request[] = []
  const foreign: string[] = []
  page.on('request', (request) => {
    if (request.url().startsWith(`${portal.server}/`)) requests.push(request)
    else if (!request.url().startsWith(`${portal.origin}/`)) foreign.push(request.url())
  })
  const { sub, token } = options.contact ?? newContact()
  portal.token = token
  await page.goto(`${portal.origin}/portal/home`)
  // No timer of the snippet's runs before a decision: the clock can stop here.
  if (options.clock === 'paused') await page.clock.pauseAt(installed + 60_000)
  return { context, page, sub, token, requests, foreign }
}

/** A request as the page made it: when by the page's clock, and whether its answer was handled. */
interface Sent {
  at: number
  method: string
  url: string
  body: string | undefined
  /** The page has handled its answer (or its failure): the snippet's callbacks have run. */
  done: boolean
}

const SENT = 'cat-test.sent'

/**
 * Runs in the page before its scripts: records every fetch and beacon, in the page itself, so
 * that what the page sent up to a point of its clock is known without waiting for the browser
 * to report requests. Kept under a symbol: the page gets no new global name.
 */
function recordRequests(): void {
  const sent: Sent[] = []
  Object.defineProperty(window, Symbol.for('cat-test.sent'), { value: sent })
  const fetch = window.fetch
  window.fetch = function (input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const entry: Sent = { at: Date.now(), method: init?.method ?? 'GET', url: String(input), body: typeof init?.body === 'string' ? init.body : undefined, done: false }
    sent.push(entry)
    return fetch.call(this, input, init).finally(() => {
      entry.done = true
    })
  }
  const beacon = navigator.sendBeacon
  navigator.sendBeacon = function (url: string | URL, data?: BodyInit | null): boolean {
    sent.push({ at: Date.now(), method: 'POST', url: String(url), body: undefined, done: true })
    return beacon.call(this, url, data)
  }
}

/** What the page has sent so far. */
const sentBy = (page: Page): Promise<Sent[]> => page.evaluate((key) => (window as unknown as Record<symbol, Sent[]>)[Symbol.for(key)] ?? [], SENT)

/** What the page has sent, once it has handled every answer. */
const settled = (page: Page): Promise<Sent[]> =>
  until('the page handled every answer', async () => {
    const sent = await sentBy(page)
    return sent.every((s) => s.done) ? sent : undefined
  })

/** Once the page handled every answer: what it sends while its clock runs `ms` ahead. */
async function sentWhileRunning(page: Page, ms = QUIET_MS): Promise<string[]> {
  const before = (await settled(page)).length
  await page.clock.runFor(ms)
  return (await sentBy(page)).slice(before).map(describeSent)
}

/** As `describe`, for a request the page recorded. */
function describeSent(sent: Sent): string {
  const url = new URL(sent.url)
  if (url.pathname === '/cat_heartbeat') return `${sent.method === 'POST' ? 'beacon' : 'heartbeat'} ${url.searchParams.get('event') ?? ''}`
  if (url.pathname === '/clients/cat_consent' && sent.method === 'POST') return `POST ${url.pathname} ${(JSON.parse(sent.body ?? '{}') as { decision?: string }).decision ?? ''}`
  return `${sent.method} ${url.pathname}`
}

/** What each request was: "GET /clients/cat_consent_js", "heartbeat nav", "POST /clients/cat_consent {decision}". */
function describe(request: Request): string {
  const url = new URL(request.url())
  if (url.pathname === '/cat_heartbeat') return `${request.method() === 'POST' ? 'beacon' : 'heartbeat'} ${url.searchParams.get('event') ?? ''}`
  if (url.pathname === '/clients/cat_consent' && request.method() === 'POST') return `POST ${url.pathname} ${(JSON.parse(request.postData() ?? '{}') as { decision?: string }).decision ?? ''}`
  return `${request.method()} ${url.pathname}`
}

const heartbeat = (event: string) => (request: Request): boolean => request.url().startsWith(`${portal.server}/cat_heartbeat?`) && new URL(request.url()).searchParams.get('event') === event

/** The element with focus, looking into shadow roots. */
async function focused(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    let el: Element | null = document.activeElement
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement
    return el === null || el === document.body ? null : (el.textContent ?? '')
  })
}

async function consentOf(token: string): Promise<{ status: number; body: { decision?: string; version?: string } }> {
  const res = await app.inject(`/clients/cat_consent?token=${token}`)
  return { status: res.statusCode, body: res.json() }
}

const status = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as { CAT: { status(): string } }).CAT.status())

function waitForDiff(match: (m: Message) => boolean): Promise<Message> {
  return dash.waitFor((m) => m.type === 'diff' && match(m), 5000)
}

/** Hides or shows the page as a browser does (the document's visibility, then the event). */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    if (hidden) {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true })
    } else {
      delete (document as { visibilityState?: unknown }).visibilityState
      delete (document as { hidden?: unknown }).hidden
    }
    document.dispatchEvent(new Event('visibilitychange'))
  }, hidden)
}

t.test('first visit: the banner is an accessible, keyboard-operable dialog, and nothing is sent before a decision', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } })
  t.teardown(() => context.close())
  // The page's own globals before any script: the snippet may add window.CAT and nothing else.
  await context.addInitScript(() => Object.defineProperty(window, '__globalsBefore', { value: Object.getOwnPropertyNames(window), enumerable: false }))
  const { page, requests, foreign } = await visit(t, { context })
  const dialog = page.getByRole('dialog', { name: en.title })
  await dialog.waitFor()
  t.equal(await page.getByRole('dialog').count(), 1, 'one dialog')
  const added = await page.evaluate(() => {
    const before = (window as unknown as { __globalsBefore: string[] }).__globalsBefore
    return Object.getOwnPropertyNames(window).filter((name) => !before.includes(name) && name !== '__globalsBefore')
  })
  t.same(added, ['CAT'], 'no global but window.CAT')

  // The browser's own accessibility tree: role, name, description, buttons with names.
  const cdp = await context.newCDPSession(page)
  const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: { role?: { value?: string }; name?: { value?: string }; description?: { value?: string }; ignored?: boolean }[] }
  const axDialog = nodes.find((n) => n.role?.value === 'dialog')
  t.equal(axDialog?.name?.value, en.title, 'accessible name: the title (aria-labelledby)')
  t.equal(axDialog?.description?.value, en.text, 'accessible description: the purpose line (aria-describedby)')
  const names = nodes.filter((n) => n.role?.value === 'button' && n.ignored !== true).map((n) => n.name?.value)
  for (const name of [en.accept, en.decline, en.more]) t.ok(names.includes(name), `a button named "${name}"`)
  t.match(await dialog.ariaSnapshot(), new RegExp(`heading "${en.title}"[\\s\\S]*button "${en.accept}"[\\s\\S]*button "${en.decline}"[\\s\\S]*button "${en.more}"`))

  // Keyboard: focus starts on Accept, Tab goes Accept → Decline → More → Accept, Shift+Tab back.
  t.equal(await focused(page), en.accept, 'focus moved to the first button')
  await page.keyboard.press('Tab')
  t.equal(await focused(page), en.decline)
  await page.keyboard.press('Tab')
  t.equal(await focused(page), en.more)
  await page.keyboard.press('Tab')
  t.equal(await focused(page), en.accept, 'Tab cycles within the banner')
  await page.keyboard.press('Shift+Tab')
  t.equal(await focused(page), en.more, 'Shift+Tab cycles backwards')

  // "More details" is a disclosure: Enter shows the longer text in place.
  const more = page.getByRole('button', { name: en.more })
  t.equal(await more.getAttribute('aria-expanded'), 'false')
  t.notOk(await page.getByText(en.details).isVisible(), 'details hidden at first')
  await page.keyboard.press('Enter')
  const less = page.getByRole('button', { name: en.less })
  t.equal(await less.getAttribute('aria-expanded'), 'true')
  t.ok(await page.getByText(en.details).isVisible(), 'details shown')
  await page.keyboard.press('Space')
  t.equal(await more.getAttribute('aria-expanded'), 'false', 'Space collapses it again')

  // Accept and Decline: equal size; the banner is at the bottom, at most ~40 % of the viewport.
  const accept = await page.getByRole('button', { name: en.accept, exact: true }).boundingBox()
  const decline = await page.getByRole('button', { name: en.decline, exact: true }).boundingBox()
  t.ok(accept !== null && decline !== null, 'both buttons rendered')
  t.ok(Math.abs(accept!.width - decline!.width) < 0.5 && Math.abs(accept!.height - decline!.height) < 0.5, `equal size: ${JSON.stringify(accept)} vs ${JSON.stringify(decline)}`)
  const box = (await dialog.boundingBox())!
  t.ok(box.height <= 700 * 0.4 + 1, `height ${box.height} within 40vh`)
  t.ok(Math.abs(box.y + box.height - 700) < 1, 'fixed at the bottom')
  // The portal's stylesheet (red 40px serif, display:none on div/button/p) does not reach in.
  const look = await page.getByRole('button', { name: en.accept, exact: true }).evaluate((el) => {
    const style = getComputedStyle(el)
    return { color: style.color, fontSize: style.fontSize, display: style.display }
  })
  t.same(look, { color: 'rgb(255, 255, 255)', fontSize: '15px', display: 'block' }, 'styles scoped')

  // Escape is no decision: focus goes back to the page, the banner stays.
  await page.keyboard.press('Escape')
  t.equal(await focused(page), null, 'focus left the banner')
  t.ok(await dialog.isVisible(), 'the banner stays')
  t.equal(await status(page), 'unknown')

  // Non-modal: a page element that gets focus under the banner is scrolled above it.
  // Tab on into the page: the search field, the control, then a link far down the page,
  // which the browser scrolls into view at the bottom edge, under the banner; the snippet
  // scrolls it on above the banner.
  const order: (string | null)[] = []
  while (order.length < 6 && order[order.length - 1] !== 'Deep link') {
    await page.keyboard.press('Tab')
    order.push(await focused(page))
  }
  t.same(order.filter((name) => name !== null), ['', en.controlOff, 'Deep link'], `the page's own tab order (${JSON.stringify(order)})`)
  const link = (await page.locator('#deep').boundingBox())!
  const top = (await dialog.boundingBox())!.y
  t.ok(link.y >= 0 && link.y + link.height <= top, `the focused link (${link.y}-${link.y + link.height}) is above the banner (top ${top})`)
  await page.keyboard.press('Tab')
  t.equal(await focused(page), en.accept, 'the banner comes last in the tab order')

  // The persistent control says off; nothing but the script itself was requested.
  t.ok(await page.getByRole('button', { name: en.controlOff }).isVisible(), 'the control shows "off"')
  t.same(requests.map(describe), ['GET /clients/cat_consent_js'])
  t.same(foreign, [], 'no request to any other server')
})

t.test('Decline: a denied decision, no heartbeat in the next interval, and no banner on the next visit', async (t) => {
  const { page, token, requests } = await visit(t, { clock: 'flowing' })
  await page.getByRole('dialog', { name: en.title }).waitFor()
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${portal.server}/clients/cat_consent`)
  await page.getByRole('button', { name: en.decline, exact: true }).click()
  const post = await posted
  t.equal(post.headers()['content-type'], 'text/plain;charset=UTF-8', 'sent without a preflight')
  t.match(JSON.parse(post.postData() ?? '{}'), { token, decision: 'denied', locale: 'en', version: /^[0-9a-f]{16}$/ })
  await post.response()
  t.equal(await page.getByRole('dialog').count(), 0, 'the banner is gone')
  t.same(await sentWhileRunning(page), [], 'no heartbeat in the next interval')
  t.same(requests.map(describe), ['GET /clients/cat_consent_js', 'POST /clients/cat_consent denied'], 'no heartbeat')
  t.match(await consentOf(token), { status: 200, body: { decision: 'denied' } }, 'the ledger holds denied')
  t.equal(await status(page), 'denied')
  t.ok(await page.getByRole('button', { name: en.controlOff }).isVisible())

  // Remembered: a reload asks nothing and sends nothing.
  requests.length = 0
  await page.reload()
  await page.waitForFunction(() => 'CAT' in window)
  // The snippet decides as it runs: a banner or a request would be there now.
  t.same((await settled(page)).map(describeSent), [], 'the page requested nothing')
  t.equal(await page.getByRole('dialog').count(), 0, 'no banner on the next visit')
  t.same(requests.map(describe), ['GET /clients/cat_consent_js'])
})

t.test('Accept → nav and joined; pushState → updated; hidden → idle; withdraw() → left (withdrawn), then silence', async (t) => {
  const { page, sub, token, requests, foreign } = await visit(t, { clock: 'flowing' })
  await page.getByRole('dialog', { name: en.title }).waitFor()
  const from = dash.messages.length
  const nav = page.waitForRequest(heartbeat('nav'))
  await page.getByRole('button', { name: en.accept, exact: true }).click()
  const first = new URL((await nav).url())
  t.match(Object.fromEntries(first.searchParams), { token, sid: /^[A-Za-z0-9_-]{16}$/, path: '/portal/home', title: 'Portal home', event: 'nav' })
  t.equal((await (await nav).response())?.status(), 204)
  const joined = await dash.waitFor((m) => m.joined?.some((p) => p.contactId === sub) === true, 5000, from)
  t.match(joined.joined?.find((p) => p.contactId === sub), { contactId: sub, clientId: 'client-7', name: 'Ann Example', company: 'Acme Ltd', path: '/portal/home', title: 'Portal home', state: 'active', tabs: 1 })
  t.same(requests.slice(0, 3).map(describe), ['GET /clients/cat_consent_js', 'POST /clients/cat_consent granted', 'heartbeat nav'], 'consent is recorded before the first heartbeat')
  t.match(await consentOf(token), { status: 200, body: { decision: 'granted' } })
  t.equal(await page.getByRole('dialog').count(), 0, 'the banner is gone')
  t.equal(await status(page), 'granted')
  t.ok(await page.getByRole('button', { name: en.controlOn }).isVisible(), 'the control shows "on"')

  // The loop beats every CAT-Interval (1 s) with the same tab id.
  const beat = await page.waitForRequest(heartbeat('beat'), { timeout: 3000 })
  t.equal(new URL(beat.url()).searchParams.get('sid'), first.searchParams.get('sid'), 'one sid per tab')

  // In-app navigation.
  const moved = waitForDiff((m) => m.updated?.some((p) => p.contactId === sub && p.path === '/portal/tickets?open=1') === true)
  await page.evaluate(() => {
    history.pushState({}, '', '/portal/tickets?open=1')
    document.title = 'Tickets'
  })
  const updated = await moved
  t.match(updated.updated?.find((p) => p.contactId === sub), { path: '/portal/tickets?open=1', title: 'Tickets', state: 'active' })
  // The same path again is not a new navigation.
  const navs = requests.filter(heartbeat('nav')).length
  await page.evaluate(() => history.replaceState({ again: true }, '', '/portal/tickets?open=1'))
  // The snippet reads the path 50 ms after a history change.
  t.same((await sentWhileRunning(page, 300)).filter((sent) => sent === 'heartbeat nav'), [], 'replaceState to the same path sends no nav')
  t.equal(requests.filter(heartbeat('nav')).length, navs, 'replaceState to the same path sends no nav')
  const hashed = waitForDiff((m) => m.updated?.some((p) => p.contactId === sub && p.path === '/portal/tickets?open=1#reply') === true)
  await page.evaluate(() => {
    location.hash = 'reply'
  })
  await hashed
  t.pass('hashchange → updated with the hash')

  // Hidden: a `hidden` heartbeat, the dashboard shows idle, and no beats while hidden.
  const idle = waitForDiff((m) => m.updated?.some((p) => p.contactId === sub && p.state === 'idle') === true)
  const hiddenSent = page.waitForRequest(heartbeat('hidden'))
  await setHidden(page, true)
  await hiddenSent
  await idle
  t.pass('hidden → idle')
  const sinceHidden = requests.length
  t.same(await sentWhileRunning(page), [], 'no beat while hidden')
  t.same(requests.slice(sinceHidden).map(describe), [], 'no beat while hidden')

  const active = waitForDiff((m) => m.updated?.some((p) => p.contactId === sub && p.state === 'active') === true)
  const visibleSent = page.waitForRequest(heartbeat('visible'))
  await setHidden(page, false)
  await visibleSent
  await active
  await page.waitForRequest(heartbeat('beat'), { timeout: 3000 })
  t.pass('visible → active, and beats resume')

  // Withdraw: left with reason withdrawn at once, and no request after the withdrawal.
  const left = waitForDiff((m) => m.left?.some((l) => l.contactId === sub) === true)
  const withdrawn = page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${portal.server}/clients/cat_consent`)
  await page.evaluate(() => (window as unknown as { CAT: { withdraw(): void } }).CAT.withdraw())
  t.match(JSON.parse((await withdrawn).postData() ?? '{}'), { decision: 'withdrawn' })
  const gone = await left
  t.match(gone.left?.find((l) => l.contactId === sub), { contactId: sub, reason: 'withdrawn' })
  const sinceWithdrawal = requests.length
  t.same(await sentWhileRunning(page), [], 'no further requests')
  t.same(requests.slice(sinceWithdrawal).map(describe), [], 'no further requests')
  t.equal(await status(page), 'withdrawn')
  t.ok(await page.getByRole('button', { name: en.controlOff }).isVisible(), 'the control follows: "off"')
  t.match(await consentOf(token), { status: 200, body: { decision: 'withdrawn' } })
  t.same(foreign, [], 'no request to any other server')
})

t.test('a remembered grant is confirmed with the server first; the control withdraws; pagehide sends leave', async (t) => {
  const contact = newContact()
  const first = await visit(t, { contact })
  await first.page.getByRole('dialog', { name: en.title }).waitFor()
  const nav = first.page.waitForRequest(heartbeat('nav'))
  await first.page.getByRole('button', { name: en.accept, exact: true }).click()
  await (await nav).response()

  // A second tab of the same contact: no banner, the server is asked, then it beats.
  const from = dash.messages.length
  const second = await visit(t, { context: first.context, contact })
  await second.page.waitForRequest(heartbeat('nav'))
  t.same(second.requests.slice(0, 3).map(describe), ['GET /clients/cat_consent_js', 'GET /clients/cat_consent', 'heartbeat nav'])
  t.equal(await second.page.getByRole('dialog').count(), 0, 'no banner')
  await dash.waitFor((m) => m.updated?.some((p) => p.contactId === contact.sub && p.tabs === 2) === true, 5000, from)
  t.pass('the second tab is an updated with tabs: 2')

  // Closing a tab sends `leave` by beacon: back to one tab.
  const oneTab = waitForDiff((m) => m.updated?.some((p) => p.contactId === contact.sub && p.tabs === 1) === true)
  await second.page.close()
  await oneTab
  t.pass('pagehide → leave → tabs: 1')

  // The persistent control withdraws, and turns into "off".
  const left = waitForDiff((m) => m.left?.some((l) => l.contactId === contact.sub && l.reason === 'withdrawn') === true)
  await first.page.getByRole('button', { name: en.controlOn }).click()
  await left
  t.ok(await first.page.getByRole('button', { name: en.controlOff }).isVisible())
  t.equal(await status(first.page), 'withdrawn')

  // Off → the control opens the banner again, focus on Accept; Escape gives focus back to the control.
  await first.page.getByRole('button', { name: en.controlOff }).click()
  await first.page.getByRole('dialog', { name: en.title }).waitFor()
  t.equal(await focused(first.page), en.accept)
  await first.page.keyboard.press('Escape')
  t.equal(await focused(first.page), en.controlOff, 'Escape: focus back on the control that opened the banner')
  t.ok(await first.page.getByRole('dialog', { name: en.title }).isVisible(), 'no decision: the banner stays')
  // Tab reaches the banner from the page (after the link below the control); Accept from the keyboard starts over.
  await first.page.keyboard.press('Tab')
  t.equal(await focused(first.page), 'Deep link')
  await first.page.keyboard.press('Tab')
  t.equal(await focused(first.page), en.accept, 'then the banner')
  const rejoined = waitForDiff((m) => m.joined?.some((p) => p.contactId === contact.sub) === true)
  await first.page.keyboard.press('Enter')
  await rejoined
  t.equal(await focused(first.page), en.controlOn, 'focus returned to the control, which now says "on"')
})

t.test('stored grant that the server does not know (another contact on this browser): the banner asks again', async (t) => {
  const first = await visit(t)
  await first.page.getByRole('dialog', { name: en.title }).waitFor()
  const nav = first.page.waitForRequest(heartbeat('nav'))
  await first.page.getByRole('button', { name: en.accept, exact: true }).click()
  await nav
  const other = await visit(t, { context: first.context })
  await other.page.getByRole('dialog', { name: en.title }).waitFor()
  t.same(other.requests.map(describe), ['GET /clients/cat_consent_js', 'GET /clients/cat_consent'], 'asked the server, no heartbeat')
  t.equal(await status(other.page), 'unknown')
})

/** Opens the portal and accepts; resolves once the dashboard saw the contact join. */
async function accepted(t: { teardown(fn: () => unknown): void }, options: Pick<VisitOptions, 'clock' | 'random'> = {}): Promise<Visit> {
  const v = await visit(t, options)
  await v.page.getByRole('dialog', { name: en.title }).waitFor()
  // Waited for, so that a later change is not coalesced with the join in one diff.
  const joined = waitForDiff((m) => m.joined?.some((p) => p.contactId === v.sub) === true)
  await v.page.getByRole('button', { name: en.accept, exact: true }).click()
  await joined
  return v
}

const eventOf = (sent: Sent): string => new URL(sent.url).searchParams.get('event') ?? ''

/**
 * On a paused page clock, once the page handled every answer: runs the clock `ms` ahead in two
 * steps and returns what the page sent in each: nothing is due in the first `ms - 1`, the next
 * request exactly at `ms`. The clock stops there, so the answer is handled at that time.
 */
async function sentExactlyAfter(page: Page, ms: number): Promise<{ early: Sent[]; due: Sent[] }> {
  const before = (await settled(page)).length
  await page.clock.runFor(ms - 1)
  const early = (await sentBy(page)).slice(before)
  await page.clock.runFor(1)
  return { early, due: (await sentBy(page)).slice(before + early.length) }
}

t.test('beats follow CAT-Interval with jitter; 503/429 back off (Retry-After honoured), a network error too; 401 stops for good', async (t) => {
  // The page's clock stands still but when the test runs it, and Math.random gives, in order:
  // the jitter of three beats (0, 0.5, 0.995 → 900, 1000, 1099 ms: 1 s ± 10 %), of the
  // fourth (0.5), then the backoff after a 429 (0.7 of 1 s) and after a network error (0.3 of 2 s).
  const { page } = await accepted(t, { clock: 'paused', random: [0, 0.5, 0.995, 0.5, 0.7, 0.3] })
  let last = (await settled(page)).at(-1)!
  t.equal(eventOf(last), 'nav', 'the nav came first')
  /** The next request is due exactly `ms` after the last one; it is a beat. */
  const nextAfter = async (ms: number, what: string): Promise<void> => {
    const { early, due } = await sentExactlyAfter(page, ms)
    t.same(early.map(describeSent), [], `${what}: nothing before ${ms} ms`)
    t.same(due.map(describeSent), ['heartbeat beat'], `${what}: a beat at ${ms} ms`)
    if (due[0] !== undefined) {
      t.equal(due[0].at - last.at, ms, `${what}: ${ms} ms after the request before, by the page's clock`)
      last = due[0]
    }
  }
  // Three plain beats from the real server: 1 s apart, ±10 %.
  await nextAfter(900, 'beat 1 (jitter 0)')
  await nextAfter(1000, 'beat 2 (jitter 0.5)')
  await nextAfter(1099, 'beat 3 (jitter 0.995)')

  // Now the server misbehaves, in this order.
  const cors = { 'access-control-allow-origin': portal.origin, 'access-control-expose-headers': 'CAT-Interval, Retry-After' }
  const script: ((route: Route) => Promise<void>)[] = [
    (route) => route.fulfill({ status: 503, headers: { ...cors, 'retry-after': '2' }, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"down"}}' }),
    (route) => route.fulfill({ status: 429, headers: cors, contentType: 'application/json', body: '{"error":{"code":"rate_limited","message":"slow down"}}' }),
    (route) => route.abort('connectionrefused'),
    (route) => route.fulfill({ status: 401, headers: cors, contentType: 'application/json', body: '{"error":{"code":"invalid_token","message":"expired"}}' }),
  ]
  let answered = 0
  await page.route(`${portal.server}/cat_heartbeat?**`, async (route) => {
    answered += 1
    const next = script.shift()
    if (next === undefined) return route.continue()
    await next(route)
  })
  await nextAfter(1000, 'beat 4 (jitter 0.5), answered 503 with Retry-After: 2')
  await nextAfter(2000, 'after 503 with Retry-After: 2, the retry goes after 2 s, answered 429')
  await nextAfter(700, 'after 429 without Retry-After, full jitter on a base of 1 s (0.7), answered by a network error')
  await nextAfter(600, 'after a network error, full jitter on 2 s (0.3), answered 401')
  // The page's request is seen before the route's handler for it runs: the count is read once it has.
  await until('the route saw the fourth request', () => (answered >= 4 ? true : undefined), 10_000)
  t.equal(answered, 4, 'the four answers were given, one per request')
  // After 401: the backoff would be at most 5 minutes; the clock runs past that.
  t.same(await sentWhileRunning(page, 300_000), [], 'after 401 nothing more is sent')
  t.equal(answered, 4, 'after 401 nothing more is sent')
  t.equal(await status(page), 'granted', 'a 401 stops the loop, it is no decision')
})

t.test('Accept on a server shedding load: the decision is posted again after Retry-After, then the loop starts', async (t) => {
  const { page, token } = await visit(t, { clock: 'paused' })
  await page.getByRole('dialog', { name: en.title }).waitFor()
  const cors = { 'access-control-allow-origin': portal.origin, 'access-control-expose-headers': 'CAT-Interval, Retry-After' }
  let refused = 0
  await page.route(`${portal.server}/clients/cat_consent`, async (route) => {
    if (route.request().method() !== 'POST' || refused > 0) return route.continue()
    refused += 1
    await route.fulfill({ status: 503, headers: { ...cors, 'retry-after': '3' }, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"shedding"}}' })
  })
  await page.getByRole('button', { name: en.accept, exact: true }).click()
  const first = await until('the first POST was answered', async () => {
    const sent = await settled(page)
    return sent.length > 0 ? sent : undefined
  })
  t.same(first.map(describeSent), ['POST /clients/cat_consent granted'], 'posted once, answered 503')
  t.equal(refused, 1)
  const { early, due } = await sentExactlyAfter(page, 3000)
  t.same(early.map(describeSent), [], 'nothing before the 3 s of Retry-After: no heartbeat without the server\'s agreement')
  t.same(due.map(describeSent), ['POST /clients/cat_consent granted'], 'the same decision again at 3 s')
  const after = await until('the loop started', async () => {
    const sent = await settled(page)
    return sent.some((s) => describeSent(s) === 'heartbeat nav') ? sent : undefined
  })
  t.same(after.slice(first.length + due.length).map(describeSent), ['heartbeat nav'], 'the server took it: the first heartbeat follows')
  t.match(await consentOf(token), { status: 200, body: { decision: 'granted' } }, 'the ledger holds granted')
  t.equal(await status(page), 'granted')
})

t.test('withdrawn elsewhere (another device): the next heartbeat gets 403 and the loop stops for good', async (t) => {
  const { page, sub, token, requests } = await accepted(t, { clock: 'flowing' })
  const left = waitForDiff((m) => m.left?.some((l) => l.contactId === sub && l.reason === 'withdrawn') === true)
  const res = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, decision: 'withdrawn', version: 'elsewhere', locale: 'en' }) })
  t.equal(res.statusCode, 204)
  await left
  const refused = await page.waitForResponse((r) => r.url().startsWith(`${portal.server}/cat_heartbeat?`) && r.status() === 403, { timeout: 3000 })
  t.match(await refused.json(), { error: { code: 'consent_required' } })
  const count = requests.length
  t.same(await sentWhileRunning(page, 2500), [], 'no request after the 403')
  t.equal(requests.length, count, 'no request after the 403')
})

t.test('every language: its served script runs and shows its banner, Accept and Decline the same size', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } })
  t.teardown(() => context.close())
  t.teardown(() => {
    portal.query = ''
  })
  const locales = readdirSync(join(root, 'client-snippet', 'lang')).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5))
  for (const locale of locales) {
    const strings = JSON.parse(readFileSync(join(root, 'client-snippet', 'lang', `${locale}.json`), 'utf8')) as Record<CatStringKey, string>
    portal.query = `?lang=${locale}`
    const { page } = await visit(t, { context })
    await page.getByRole('dialog', { name: strings.title }).waitFor()
    const accept = (await page.getByRole('button', { name: strings.accept, exact: true }).boundingBox())!
    const decline = (await page.getByRole('button', { name: strings.decline, exact: true }).boundingBox())!
    t.ok(Math.abs(accept.width - decline.width) < 0.5 && Math.abs(accept.height - decline.height) < 0.5, `${locale}: "${strings.title}", Accept and Decline of equal size`)
    t.ok(await page.getByRole('button', { name: strings.controlOff }).isVisible(), `${locale}: the control says "${strings.controlOff}"`)
    await page.close()
  }
})

t.test('Global Privacy Control: no banner, no request', async (t) => {
  const { page, requests } = await visit(t, { gpc: true })
  await page.waitForFunction(() => 'CAT' in window)
  // The snippet decides as it runs: a banner or a request would be there now.
  t.same((await settled(page)).map(describeSent), [], 'the page requested nothing')
  t.equal(await page.getByRole('dialog').count(), 0, 'no banner')
  t.same(requests.map(describe), ['GET /clients/cat_consent_js'], 'nothing but the script itself')
  t.equal(await status(page), 'denied')
  const control = page.getByRole('button', { name: en.controlOff })
  t.ok(await control.isDisabled(), 'the control shows "off" and cannot turn it on')
  await page.evaluate(() => (window as unknown as { CAT: { grant(): void } }).CAT.grant())
  // A decision posts from a promise callback: those have run by the next evaluation.
  t.same((await settled(page)).map(describeSent), [], 'CAT.grant() does nothing under GPC')
  t.same(requests.map(describe), ['GET /clients/cat_consent_js'], 'CAT.grant() does nothing under GPC')
})
