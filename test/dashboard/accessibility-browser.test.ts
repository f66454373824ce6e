/**
 * Accessibility in real headless Chromium: an axe-core audit of /admin (the list, the counts by
 * company and by page, the activity drawer, the settings), of the widget embedded in a host
 * page, and of the demo portal with its consent banner finds no violation; the rows, the search,
 * the views and the drawer work from the keyboard and have the names and roles a screen reader
 * announces (issue 19).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:http'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { adminToken, buildTestApp } from '../helpers/app.js'
import { launchChromium } from '../helpers/browser.js'
import { findProjectRoot } from '../../src/activity/database.js'

const en = JSON.parse(readFileSync(join(findProjectRoot(), 'dashboard', 'lang', 'en.json'), 'utf8')) as Record<string, string>
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js')

t.setTimeout(240_000)

// The embedding page of another product: the widget alone, in a page with its own landmarks.
const host = Object.assign(createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CRM</title></head><body><main><h1>CRM</h1>
<script src="${host.base}/admin/widget.js"></script>
<cat-online-clients server="${host.base}" token="${adminToken({ role: 'staff' })}"></cat-online-clients></main></body></html>`)
}), { base: '' })
await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => host.close(() => resolve())))
const hostOrigin = `http://127.0.0.1:${(host.address() as AddressInfo).port}`

// Each contact seeded 10 ms after the one before: the newest (first listed) is the last seeded.
let ahead = 0
const app = await buildTestApp(t, { now: () => Date.now() + ahead, env: { CAT_HEARTBEAT_INTERVAL_S: '300', CAT_PRESENCE_TIMEOUT_S: '900', CAT_ALLOWED_ORIGINS: hostOrigin } })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
host.base = base

const people = [
  { contactId: 'ann', clientId: 'acme', name: 'Ann Example', company: 'Acme Ltd', path: '/clients/invoices', title: 'Invoices' },
  { contactId: 'bob', clientId: 'builder', name: 'Bob Builder', company: 'Builder & Co', path: '/clients/tickets', title: 'Tickets' },
  { contactId: 'cid', clientId: 'acme', name: 'Cid Acme', company: 'Acme Ltd', path: '/clients/invoices', title: 'Invoices' },
]
for (const p of people) {
  ahead += 10
  await app.presence.heartbeat({ ...p, sid: `tab-${p.contactId}`, event: 'nav' })
}


const browser: Browser = await launchChromium(t)

async function open(tt: { teardown(fn: () => unknown): void }, url: string): Promise<Page> {
  // The pages' CSP admits only their own scripts; the audit's script is the test's, not theirs.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', bypassCSP: true })
  tt.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(url)
  return page
}

interface Violation {
  id: string
  help: string
  nodes: string[]
}

/** axe-core's audit of the page as it stands (open shadow roots included): its violations. */
async function audit(page: Page): Promise<Violation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE })
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: { id: string; help: string; nodes: { target: unknown[] }[] }[] }> } }).axe
    const result = await axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }))
  })
}

const widget = (page: Page) => page.locator('cat-online-clients')

t.test('/admin: no axe violation with the list, the counts, the drawer and the settings', async (t) => {
  const page = await open(t, `${base}/admin#token=${adminToken()}`)
  await widget(page).locator('li[data-id="ann"]').waitFor()
  t.equal(await page.locator('html').getAttribute('lang'), 'en', '<html lang>')
  t.same(await audit(page), [], 'the list')

  await widget(page).getByRole('button', { name: en.viewCompany, exact: true }).click()
  await widget(page).locator('.groups li').first().waitFor()
  t.same(await audit(page), [], 'the counts by company')
  await widget(page).getByRole('button', { name: en.viewPage, exact: true }).click()
  t.same(await audit(page), [], 'the counts by page')
  await widget(page).locator('.groups button').first().click()
  await widget(page).locator('.chip').waitFor()
  t.same(await audit(page), [], 'a group listed, with its chip')
  await widget(page).getByRole('button', { name: en.clearGroup }).click()

  await widget(page).getByRole('searchbox').fill('nobody-like-this')
  await widget(page).getByText(en.noMatch!, { exact: true }).waitFor()
  t.same(await audit(page), [], 'no match')
  await widget(page).getByRole('searchbox').fill('')

  await widget(page).locator('li[data-id="ann"] button').click()
  await page.getByRole('dialog', { name: 'Activity of Ann Example' }).waitFor()
  await widget(page).getByText(en.noActivity!, { exact: true }).waitFor()
  t.same(await audit(page), [], 'the activity drawer')
  await page.keyboard.press('Escape')

  await widget(page).getByRole('button', { name: en.settings, exact: true }).click()
  await widget(page).getByRole('spinbutton').first().waitFor()
  t.same(await audit(page), [], 'the settings panel')
})

t.test('the widget in a host page: no axe violation', async (t) => {
  const page = await open(t, `${hostOrigin}/crm`)
  await widget(page).locator('li[data-id="bob"]').waitFor()
  t.same(await audit(page), [], 'embedded')
})

t.test('the demo portal with its consent banner: no axe violation', async (t) => {
  const page = await open(t, `${base}/demo`)
  const banner = page.getByRole('dialog')
  await banner.waitFor()
  t.same(await audit(page), [], 'the banner shown')
  await banner.getByRole('button').first().click()
  await banner.waitFor({ state: 'detached' })
  t.same(await audit(page), [], 'after accepting')
})

t.test('from the keyboard, with the names a screen reader announces', async (t) => {
  const page = await open(t, `${base}/admin#token=${adminToken()}`)
  const w = widget(page)
  await w.locator('li[data-id="cid"]').waitFor()
  const focused = (): Promise<string> => page.evaluate(() => {
    const active = document.querySelector('cat-online-clients')?.shadowRoot?.activeElement as HTMLElement | null | undefined
    return active ? `${active.tagName.toLowerCase()}:${active.getAttribute('aria-label') ?? active.getAttribute('type') ?? ''}:${active.closest('li')?.dataset.id ?? active.textContent ?? ''}` : 'outside'
  })

  // The first stop in the dashboard is the search.
  await page.keyboard.press('Tab')
  t.equal(await focused(), 'input:search:', 'Tab: the search box')
  const search = w.getByRole('searchbox', { name: en.filterLabel })
  t.equal(await search.getAttribute('placeholder'), en.filterPlaceholder)
  await page.keyboard.type('invoices')
  const shown = w.getByRole('status').filter({ hasText: 'shown' })
  await shown.getByText('2 of 3 shown', { exact: true }).waitFor()
  t.pass('typed: "2 of 3 shown", a status a screen reader reads out')

  // The views: three buttons, one pressed.
  await page.keyboard.press('Tab')
  t.equal(await focused(), `button:button:${en.viewList}`)
  const views = w.getByRole('group', { name: en.viewLabel })
  t.equal(await views.getByRole('button', { pressed: true }).textContent(), en.viewList)
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  t.equal(await focused(), `button:button:${en.viewPage}`)
  await page.keyboard.press('Enter')
  t.equal(await views.getByRole('button', { pressed: true }).textContent(), en.viewPage, 'Enter: by page')
  const pages = w.getByRole('list', { name: en.viewPage })
  await pages.getByRole('button', { name: '/clients/invoices Invoices 2 online' }).waitFor()
  t.pass('a page group is announced with its path, title and count')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  t.equal(await focused(), 'button:button:/clients/invoicesInvoices2 online', 'Tab: the first group')
  await page.keyboard.press('Enter')
  await w.locator('.chip').getByText('Page: /clients/invoices', { exact: true }).waitFor()
  t.pass('Enter: its contacts listed')

  const list = w.getByRole('list', { name: en.heading })
  t.equal(await list.getAttribute('aria-describedby'), 'cat-list-hint')
  t.equal(await w.locator('#cat-list-hint').textContent(), en.listHint, 'the list describes its keys')
  const items = list.getByRole('listitem')
  t.equal(await items.count(), 2, 'the two on the invoices')
  t.same(await items.evaluateAll((lis) => lis.map((li) => `${li.getAttribute('aria-posinset')}/${li.getAttribute('aria-setsize')}`)), ['1/2', '2/2'])
  await list.getByRole('button', { name: /^Cid Acme Acme Ltd Invoices \/clients\/invoices Active/ }).waitFor()
  t.pass('a row is announced with name, company, page and state')
  t.equal(await focused(), 'button:button:cid', 'the first row has the focus')
  await page.keyboard.press('ArrowDown')
  t.equal(await focused(), 'button:button:ann', 'ArrowDown: the next row')
  await page.keyboard.press('Enter')
  const drawer = page.getByRole('dialog', { name: 'Activity of Ann Example' })
  await drawer.waitFor()
  t.equal(await focused(), `button:${en.close}:×`, 'the drawer opens with the focus on Close')
  await page.keyboard.press('Enter')
  await drawer.waitFor({ state: 'hidden' })
  t.equal(await focused(), 'button:button:ann', 'closed: back on the row')

  // Back to everyone: the chip's button.
  await page.keyboard.press('Shift+Tab')
  t.equal(await focused(), `button:${en.clearGroup}:×`, 'Shift+Tab: the chip clears the group')
  await page.keyboard.press('Enter')
  await w.locator('.chip').waitFor({ state: 'hidden' })
  await w.locator('li[data-id="bob"]').waitFor()
  t.equal(await items.count(), 3, 'everyone listed again')
  t.equal(await focused(), 'input:search:', 'the focus in the search box')
})
