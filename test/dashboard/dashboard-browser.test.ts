/**
 * The admin dashboard (/admin) and the embeddable <cat-online-clients> in real headless Chromium
 * (Debian's, driven by playwright-core) against a running server with real Redis and SQLite
 * (issue 5, "How it is shown").
 */
import t from 'tap'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer, type RequestListener, type Server } from 'node:http'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'
import { adminToken, buildTestApp, cleanRedisSite, clientToken, ensureConsent, heartbeatUrl, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { launchChromium } from '../helpers/browser.js'

const root = findProjectRoot()
const en = JSON.parse(readFileSync(join(root, 'dashboard', 'lang', 'en.json'), 'utf8')) as Record<string, string>
const de = JSON.parse(readFileSync(join(root, 'dashboard', 'lang', 'de.json'), 'utf8')) as Record<string, string>

// scripts/test-services.sh installs it; a missing browser is a failure, not a skip.
// A browser and a server restart: more than tap's default 120 s on a busy 2-CPU runner.
t.setTimeout(300_000)

interface Teardown {
  teardown(fn: () => unknown): void
}

/** The embedding admin page of another product (a Perfex dashboard, say), on its own origin. */
const host = { server: '', token: '' }
const hostPage: RequestListener = (req, res) => {
  if (req.url === '/favicon.ico') return void res.writeHead(404).end()
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
  res.end(`<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>CRM dashboard</title>
<style>
  /* A hostile host stylesheet: the widget must not be affected. */
  li, span { color: red !important; font-size: 40px; }
</style></head>
<body><h1>CRM</h1>
<script src="${host.server}/admin/widget.js"></script>
<cat-online-clients server="${host.server}" token="${host.token}"></cat-online-clients>
</body></html>`)
}
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
const allowedHost = createServer(hostPage)
const foreignHost = createServer(hostPage)
const allowedOrigin = await listen(allowedHost)
const foreignOrigin = await listen(foreignHost)
t.teardown(() => Promise.all([allowedHost, foreignHost].map((s) => new Promise<void>((resolve) => s.close(() => resolve())))))

// One site and one MariaDB database across restarts: the restarted server sees the same state.
const site = uniqueSite('dashboard')
cleanRedisSite(t, site)
const databaseUrl = await createTestMysqlDatabase(t, 'dashboard')
const apps = new Set<FastifyInstance>()
t.teardown(async () => {
  for (const a of apps) await a.close()
})

async function startApp(port: number): Promise<FastifyInstance> {
  const a = await buildTestApp({ teardown: () => {} }, {
    site,
    env: { CAT_HEARTBEAT_INTERVAL_S: '1', CAT_PRESENCE_TIMEOUT_S: '5', CAT_ALLOWED_ORIGINS: allowedOrigin, DATABASE_URL: databaseUrl },
  })
  apps.add(a)
  await a.listen({ port, host: '127.0.0.1' })
  return a
}

let app = await startApp(0)
const port = (app.server.address() as AddressInfo).port
const base = `http://127.0.0.1:${port}`
host.server = base
host.token = adminToken()

const browser: Browser = await launchChromium(t)

async function newPage(tt: Teardown, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page; sockets: string[] }> {
  const context = await browser.newContext({ viewport, locale: 'en-US' })
  tt.teardown(() => context.close())
  const page = await context.newPage()
  const sockets: string[] = []
  page.on('websocket', (ws) => sockets.push(ws.url()))
  return { context, page, sockets }
}

interface Contact {
  sub: string
  token: string
  sid: string
  name: string
  company: string
}

function newContact(name: string, company: string): Contact {
  const sub = `contact-${randomBytes(4).toString('hex')}`
  return { sub, token: clientToken({ sub, clientId: `client-${company.length}`, name, company }), sid: randomBytes(8).toString('hex'), name, company }
}

/** A heartbeat as the snippet sends it (consent recorded first, as after Accept). */
async function beat(c: Contact, event: string, path = '/clients', title = 'Portal'): Promise<void> {
  await ensureConsent(app, c.token)
  const res = await app.inject(heartbeatUrl({ token: c.token, sid: c.sid, path, title, event }))
  if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}: ${res.body}`)
}

/** Writes every pending activity event to the database, as the writer loop would. */
async function writeActivity(): Promise<void> {
  while ((await app.activityWriter.writeOnce(0)) > 0) {
    // next batch
  }
}

/** Loads a page; a load that is not 200 fails here with what the server said, not later as a missing element. */
async function open(page: Page, url: string): Promise<void> {
  const res = await page.goto(url)
  if (res?.status() !== 200) throw new Error(`${url.replace(/#.*/, '')} answered ${res?.status()}: ${(await res?.text())?.slice(0, 200)}`)
}

const widget = (page: Page): Locator => page.locator('cat-online-clients')
const rowOf = (page: Page, c: Contact): Locator => page.locator(`cat-online-clients li[data-id="${c.sub}"]`)
const state = (page: Page, kind: string, timeout = 15_000): Promise<void> => page.locator(`cat-online-clients[data-state="${kind}"]`).waitFor({ timeout })
const rowIds = (page: Page): Promise<string[]> => page.locator('cat-online-clients li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.id ?? ''))
const shadowText = (page: Page): Promise<string> => widget(page).evaluate((el) => el.shadowRoot?.textContent ?? '')
const adminUrl = (token?: string): string => (token === undefined ? `${base}/admin` : `${base}/admin#token=${token}`)

const bob = newContact('Bob Builder', 'Builder & Co')

t.test('/admin: a contact shows within a second of its first heartbeat, follows nav, turns idle, opens its log, leaves', async (t) => {
  const { page } = await newPage(t)
  await open(page, adminUrl(adminToken()))
  await state(page, 'live')
  await page.getByText(en.empty!, { exact: true }).waitFor()
  t.equal(await widget(page).locator('.n').textContent(), '0', 'the number online')

  const ann = newContact('Ann Example', 'Acme Ltd')
  await ensureConsent(app, ann.token)
  const started = Date.now()
  await beat(ann, 'nav', '/clients/tickets', 'Tickets')
  const row = rowOf(page, ann)
  await row.waitFor({ timeout: 5000 })
  const shownAfter = Date.now() - started
  t.ok(shownAfter <= 1000, `shown ${shownAfter} ms after the heartbeat was sent (at most 1000)`)
  t.comment(`first heartbeat → row visible: ${shownAfter} ms`)
  for (const text of ['Ann Example', 'Acme Ltd', 'Tickets', '/clients/tickets', en.active!]) {
    await row.getByText(text, { exact: true }).waitFor({ timeout: 1000 })
  }
  t.equal(await widget(page).locator('.n').textContent(), '1')
  t.ok(await row.evaluate((li) => li.classList.contains('new')), 'the new join is highlighted')
  t.match(await row.locator('.dur').textContent(), /^\d+s$/, 'session duration, e.g. "0s"')
  t.equal(await row.locator('.seen').textContent(), 'now', 'last seen: now')
  // The duration ticks in the browser, with no message from the server.
  const before = Number((await row.locator('.dur').textContent())?.replace(/\D/g, ''))
  await page.waitForFunction(([id, n]) => {
    const text = document.querySelector('cat-online-clients')?.shadowRoot?.querySelector(`li[data-id="${id}"] .dur`)?.textContent ?? ''
    return Number(text.replace(/\D/g, '')) >= n + 1
  }, [ann.sub, before] as const, { timeout: 3000 })
  t.pass('the session duration ticks')

  await beat(ann, 'nav', '/clients/invoices', 'Invoices')
  await row.getByText('/clients/invoices', { exact: true }).waitFor({ timeout: 2000 })
  await row.getByText('Invoices', { exact: true }).waitFor({ timeout: 1000 })
  t.pass('nav: the current page follows')

  await beat(ann, 'hidden', '/clients/invoices', 'Invoices')
  await row.locator('.badge.idle', { hasText: en.idle! }).waitFor({ timeout: 2000 })
  t.pass('hidden: idle')

  // Filter by name or company.
  const filter = widget(page).getByRole('searchbox')
  await filter.fill('acme')
  t.ok(await row.isVisible(), 'company matches')
  await filter.fill('nobody-like-this')
  await page.getByText(en.noMatch!, { exact: true }).waitFor()
  t.notOk(await row.isVisible(), 'filtered out')
  await filter.fill('')
  await row.waitFor()

  // The activity drawer: the session (in the database once written) with its pages.
  await writeActivity()
  await row.getByRole('button').click()
  const drawer = page.getByRole('dialog', { name: 'Activity of Ann Example' })
  await drawer.waitFor()
  const session = drawer.locator('.session')
  await session.first().waitFor({ timeout: 3000 })
  t.equal(await session.count(), 1, 'one session')
  t.match(await session.locator('.sh').textContent(), new RegExp(`– ${en.ongoing}`), 'open session: ongoing')
  t.same(await session.locator('.pages .pt').allTextContents(), ['Tickets', 'Invoices'], 'its pages in order')
  t.same(await session.locator('.pages .path').allTextContents(), ['/clients/tickets', '/clients/invoices'])
  t.match(await session.locator('.pages .pm').first().textContent(), /\d+s$/, 'with a visible duration')
  t.notOk(await drawer.getByRole('button', { name: en.more! }).isVisible(), 'no more pages')
  await page.keyboard.press('Escape')
  await drawer.waitFor({ state: 'hidden' })
  t.equal(await page.evaluate(() => document.querySelector('cat-online-clients')?.shadowRoot?.activeElement?.closest('li')?.dataset.id), ann.sub, 'focus back on the row')

  await beat(ann, 'leave', '/clients/invoices', 'Invoices')
  await row.waitFor({ state: 'detached', timeout: 2000 })
  await page.getByText(en.empty!, { exact: true }).waitFor()
  t.pass('leave: removed')
})

t.test('a client token, or no token, shows the refusal and no data; repeated 401s stop the retries', async (t) => {
  await beat(bob, 'nav', '/clients/projects', 'Projects')

  const refused = await newPage(t)
  await open(refused.page, adminUrl(clientToken({ sub: 'someone' })))
  await state(refused.page, 'refused')
  await widget(refused.page).locator('.notice strong', { hasText: en.refused! }).waitFor()
  await refused.page.getByText(`${en.refusedToken} ${en.refusedStopped}`, { exact: true }).waitFor({ timeout: 5000 })
  const tries = refused.sockets.length
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal(refused.sockets.length, tries, `no further attempts after ${tries}`)
  t.ok(tries <= 2, `${tries} upgrade attempts in all`)
  t.equal(await rowOf(refused.page, bob).count(), 0, 'no row')
  t.notMatch(await shadowText(refused.page), /Bob Builder|Builder & Co/, 'no contact data anywhere')
  t.equal(await widget(refused.page).locator('.n').textContent(), '–', 'no count')

  const none = await newPage(t)
  await open(none.page, adminUrl())
  await state(none.page, 'refused')
  await widget(none.page).locator('.notice strong', { hasText: en.refused! }).waitFor()
  t.ok(await none.page.locator('#no-token').isVisible(), 'the page says how to get a token')
  t.equal(none.sockets.length, 0, 'no connection attempt without a token')
  t.notMatch(await shadowText(none.page), /Bob Builder/, 'no contact data')

  // The token arrives in the fragment later: the page connects without a reload.
  await none.page.evaluate((token) => (location.hash = `token=${token}`), adminToken())
  await state(none.page, 'live')
  await rowOf(none.page, bob).waitFor()
  t.notOk(await none.page.locator('#no-token').isVisible(), 'the hint is gone')
})

t.test('after the server restarts the widget reconnects by itself and shows the same state', async (t) => {
  await beat(bob, 'beat', '/clients/projects', 'Projects')
  const { page } = await newPage(t)
  await open(page, adminUrl(adminToken()))
  await state(page, 'live')
  await rowOf(page, bob).waitFor()
  const before = await rowIds(page)
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42))

  await app.close()
  apps.delete(app)
  await state(page, 'disconnected', 3000)
  await page.getByText(en.disconnected!, { exact: true }).first().waitFor()
  t.ok(await rowOf(page, bob).isVisible(), 'the last known rows stay while disconnected')

  const restarted = Date.now()
  app = await startApp(port)
  await state(page, 'live', 20_000)
  t.comment(`live again ${Date.now() - restarted} ms after the new server listened`)
  await rowOf(page, bob).getByText('Projects', { exact: true }).waitFor()
  t.same(await rowIds(page), before, 'the same contacts')
  t.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'no page reload')
  t.ok(await page.getByText(en.disconnected!, { exact: true }).first().isHidden(), 'the banner is gone')

  // And it is live: a new heartbeat to the new server shows.
  await beat(bob, 'nav', '/clients/contracts', 'Contracts')
  await rowOf(page, bob).getByText('Contracts', { exact: true }).waitFor({ timeout: 2000 })
  t.pass('diffs flow again')
})

t.test('embedded in a plain host page on another origin: the same contact, in the page language', async (t) => {
  const { page } = await newPage(t)
  await open(page, `${allowedOrigin}/crm`)
  await state(page, 'live')
  const row = rowOf(page, bob)
  await row.waitFor()
  await row.getByText('Contracts', { exact: true }).waitFor()
  await row.getByText(de.active!, { exact: true }).waitFor()
  t.equal(await widget(page).locator('h2').textContent(), de.heading, '<html lang="de">: German')
  t.equal(await row.locator('.name').evaluate((el) => getComputedStyle(el).color), 'rgb(29, 36, 51)', "the host's stylesheet does not reach in")
  // REST across origins (CORS, Bearer token from the attribute): the drawer loads.
  await writeActivity()
  await row.getByRole('button').click()
  const drawer = page.getByRole('dialog', { name: de.activityOf!.replace('{name}', 'Bob Builder') })
  await drawer.locator('.session').first().waitFor({ timeout: 3000 })
  t.ok((await drawer.locator('.pages .pt').allTextContents()).includes('Contracts'), 'the session lists its pages')

  // A host origin the server does not allow is refused, and says why.
  const foreign = await newPage(t)
  await open(foreign.page, `${foreignOrigin}/crm`)
  await state(foreign.page, 'refused')
  await foreign.page.getByText(de.refusedOrigin!, { exact: true }).waitFor()
  t.equal(await rowOf(foreign.page, bob).count(), 0, 'no data')
})

t.test('screenshot of /admin with a few contacts and the drawer open → docs/dashboard.png', async (t) => {
  const people = [
    { c: newContact('Maria Schneider', 'Nordwind Logistik GmbH'), pages: [['/clients/tickets', 'Support tickets'], ['/clients/tickets/4821', 'Ticket #4821 · Login problem'], ['/clients/invoices/INV-0193', 'Invoice INV-0193']] },
    { c: newContact('James Carter', 'Carter & Sons Ltd'), pages: [['/clients/projects/12', 'Website relaunch · Project']] },
    { c: newContact('Sofia Rossi', 'Verdi Design S.r.l.'), pages: [['/clients/contracts', 'Contracts']], idle: true },
    { c: newContact('Piotr Nowak', 'Nowak Sp. z o.o.'), pages: [['/clients/knowledge-base', 'Knowledge base']] },
  ]
  for (const { c, pages } of people) {
    for (const [index, [path, title]] of pages.entries()) {
      // A moment on each page, so the drawer shows visible time.
      if (index > 0) await new Promise((resolve) => setTimeout(resolve, 800))
      await beat(c, 'nav', path, title)
    }
  }
  await beat(people[2]!.c, 'hidden', '/clients/contracts', 'Contracts')
  // A day of once-a-minute samples of the online count, so the sparklines have a shape.
  const minute = Math.floor(Date.now() / 60_000) * 60_000
  for (let i = 1; i <= 24 * 60; i += i < 60 ? 1 : 10) {
    const hour = (new Date(minute - i * 60_000).getUTCHours() + 24) % 24
    const online = i < 60 ? 3 + Math.round(2 * Math.sin(i / 9)) + (i % 17 === 0 ? 1 : 0) : Math.max(0, Math.round(4 + 5 * Math.sin(((hour - 9) / 24) * 2 * Math.PI)))
    await app.activity.sampleOnline(minute - i * 60_000, online)
  }
  await app.activityJobs.sampleNow()
  await writeActivity()

  const { page } = await newPage(t, { width: 1680, height: 720 })
  await open(page, adminUrl(adminToken()))
  await state(page, 'live')
  for (const { c } of people) await rowOf(page, c).waitFor()
  await widget(page).locator('figure polyline').nth(1).waitFor()
  await rowOf(page, people[0]!.c).getByRole('button').click()
  const drawer = page.getByRole('dialog', { name: 'Activity of Maria Schneider' })
  await drawer.locator('.session').first().waitFor()
  await page.mouse.move(0, 0)
  // The picture without the join highlight (it fades after 4 s).
  await widget(page).evaluate((el) => el.shadowRoot?.querySelectorAll('li.new').forEach((li) => li.classList.remove('new')))
  mkdirSync(join(root, 'docs'), { recursive: true })
  await page.screenshot({ path: join(root, 'docs', 'dashboard.png') })
  t.ok(existsSync(join(root, 'docs', 'dashboard.png')), 'docs/dashboard.png written')
})
