/**
 * /admin with 100 000 contacts online (the memory engine, filled through it), in real headless
 * Chromium: the list has only the rows in view in the document and they are the right ones,
 * the keys move through all of them, the search finds by name, company and page, and the counts
 * by company and by page are right and follow the diffs (issue 19, "A dashboard that stays fast
 * at 100 000 online"). How fast is the bench's `dashboard` scenario, not this test.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Locator, Page } from 'playwright-core'
import { adminToken, buildTestApp, until } from '../helpers/app.js'
import { launchChromium } from '../helpers/browser.js'
import { findProjectRoot } from '../../src/activity/database.js'
import type { Heartbeat, Presence } from '../../src/presence/presence-engine.js'

const en = JSON.parse(readFileSync(join(findProjectRoot(), 'dashboard', 'lang', 'en.json'), 'utf8')) as Record<string, string>

// 100 000 contacts through a browser on a busy 2-CPU runner.
t.setTimeout(300_000)

const N = 100_000
const app = await buildTestApp(t, { env: { CAT_HEARTBEAT_INTERVAL_S: '300', CAT_PRESENCE_TIMEOUT_S: '900' } })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

/** Contact i: one of 1 000 companies, on one of 40 pages (page 7 is the invoices). */
function beatOf(i: number, overrides: Partial<Heartbeat> = {}): Heartbeat {
  const page = i % 40
  return {
    contactId: `contact-${i}`,
    clientId: `client-${i % 1000}`,
    name: `Contact ${i}`,
    company: `Company ${i % 1000}`,
    sid: `tab${String(i).padStart(8, '0')}`,
    path: page === 7 ? '/clients/invoices' : `/clients/page/${page}`,
    title: page === 7 ? 'Invoices' : `Page ${page}`,
    event: 'nav',
    ...overrides,
  }
}

for (let start = 0; start < N; start += 1000) {
  await Promise.all(Array.from({ length: Math.min(1000, N - start) }, (_, k) => app.presence.heartbeat(beatOf(start + k))))
}
const online = (await app.presence.snapshot()).online
if (online.length !== N) throw new Error(`${online.length} online after filling ${N}`)

/** The widget's display order: newest first, then by name, then by id. */
function displayOrder(list: readonly Presence[]): Presence[] {
  return [...list].sort((a, b) => b.since - a.since || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || (a.contactId < b.contactId ? -1 : a.contactId > b.contactId ? 1 : 0))
}
const searchKey = (p: Presence): string => `${p.name}\n${p.company}\n${p.title}\n${p.path}`.toLowerCase()

const browser = await launchChromium(t)
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' })
t.teardown(() => context.close())
const page: Page = await context.newPage()
const widget = page.locator('cat-online-clients')
const rows = widget.locator('.vp li')
const rowIds = (): Promise<string[]> => rows.evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.id ?? ''))
/** The rows a person sees: inside the list's scrolled box. */
const rowsInView = (): Promise<string[]> => widget.evaluate((el) => {
  const box = el.shadowRoot?.querySelector('.vp') as HTMLElement
  const frame = box.getBoundingClientRect()
  return Array.from(box.querySelectorAll('li'))
    .filter((li) => {
      const r = li.getBoundingClientRect()
      return r.bottom > frame.top + 1 && r.top < frame.bottom - 1
    })
    .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
    .map((li) => li.dataset.id ?? '')
})
const focusedRow = (): Promise<string | undefined> => page.evaluate(() => document.querySelector('cat-online-clients')?.shadowRoot?.activeElement?.closest('li')?.dataset.id)
const count = (): Locator => widget.locator('.n')
const fmt = (n: number): string => n.toLocaleString('en-US')

await page.goto(`${base}/admin#token=${adminToken()}`)
await page.locator('cat-online-clients[data-state="live"]').waitFor({ timeout: 30_000 })
await until('the count shows 100 000', async () => ((await count().textContent()) === fmt(N) ? true : undefined), 60_000)

t.test('only the rows in view are in the document, and they are the newest contacts in order', async (t) => {
  const order = displayOrder(online)
  const inView = await rowsInView()
  t.ok(inView.length >= 10, `${inView.length} rows in view`)
  t.same(inView, order.slice(0, inView.length).map((p) => p.contactId), 'the newest contacts, newest first')
  const inDocument = (await rowIds()).length
  t.ok(inDocument < 100, `${inDocument} rows in the document for ${fmt(N)} online`)
  const first = rows.first()
  t.equal(await first.getAttribute('aria-posinset'), '1')
  t.equal(await first.getAttribute('aria-setsize'), String(N), 'a screen reader hears "1 of 100000"')
  const top = order[0] as Presence
  await first.getByText(top.name, { exact: true }).waitFor()
  await first.getByText(top.path, { exact: true }).waitFor()

  // Scrolled to the middle: the rows there, and still only a few in the document.
  await widget.evaluate((el) => {
    const box = el.shadowRoot?.querySelector('.vp') as HTMLElement
    box.scrollTop = box.scrollHeight / 2
  })
  await until('the middle rows', async () => {
    const ids = await rowsInView()
    const at = order.findIndex((p) => p.contactId === ids[0])
    return at > 40_000 && at < 60_000 && ids.every((id, k) => order[at + k]?.contactId === id) ? true : undefined
  })
  t.ok((await rowIds()).length < 100, 'still a few rows in the document')
})

t.test('the keys move through every row; Enter opens the activity, Escape comes back to the row', async (t) => {
  const order = displayOrder(online)
  await widget.evaluate((el) => ((el.shadowRoot?.querySelector('.vp') as HTMLElement).scrollTop = 0))
  // The list renders the rows of the new position at its next frame.
  await until('back at the top', async () => ((await rowsInView())[0] === order[0]?.contactId ? true : undefined))
  await rows.first().locator('button').focus()
  t.equal(await focusedRow(), order[0]?.contactId)
  await page.keyboard.press('ArrowDown')
  await page.keyboard.press('ArrowDown')
  t.equal(await focusedRow(), order[2]?.contactId, 'ArrowDown twice: the third')
  await page.keyboard.press('End')
  t.equal(await focusedRow(), order[N - 1]?.contactId, 'End: the last of 100 000')
  t.equal(await widget.locator(`li[data-id="${order[N - 1]?.contactId}"]`).getAttribute('aria-posinset'), String(N))
  t.same((await rowsInView()).slice(-1), [order[N - 1]?.contactId], 'scrolled to the end')
  await page.keyboard.press('ArrowUp')
  t.equal(await focusedRow(), order[N - 2]?.contactId)
  await page.keyboard.press('Home')
  t.equal(await focusedRow(), order[0]?.contactId, 'Home: the first')
  await page.keyboard.press('PageDown')
  const afterPage = await focusedRow()
  const at = order.findIndex((p) => p.contactId === afterPage)
  t.ok(at > 5 && at < 40, `Page Down: a screenful further (row ${at + 1})`)
  t.ok((await rowsInView()).includes(afterPage ?? ''), 'and in view')

  await page.keyboard.press('Enter')
  const name = order[at]?.name ?? ''
  const drawer = page.getByRole('dialog', { name: `Activity of ${name}` })
  await drawer.waitFor()
  await page.keyboard.press('Escape')
  await drawer.waitFor({ state: 'hidden' })
  t.equal(await focusedRow(), afterPage, 'focus back on the row')
  // The row list is one tab stop: Tab leaves it.
  await page.keyboard.press('Tab')
  t.equal(await focusedRow(), undefined, 'Tab leaves the rows: they are one tab stop')
})

t.test('the search finds by name, company or page, at once over 100 000', async (t) => {
  const search = widget.getByRole('searchbox', { name: en.filterLabel })
  const shown = widget.locator('.shown')
  const cases: [string, string][] = [['contact 99999', 'a name'], ['company 77', 'a company'], ['/clients/invoices', 'a path'], ['invoices', 'a title or path'], ['nobody-like-this', 'nothing']]
  for (const [query, what] of cases) {
    await search.fill(query)
    const expected = displayOrder(online.filter((p) => searchKey(p).includes(query.toLowerCase())))
    if (expected.length === 0) {
      await widget.getByText(en.noMatch!, { exact: true }).waitFor()
      t.equal(await rows.count(), 0, `${what}: no row`)
      continue
    }
    await shown.getByText(`${fmt(expected.length)} of ${fmt(N)} shown`, { exact: true }).waitFor()
    await until(`${what}: the first matches in order`, async () => {
      const ids = await rowsInView()
      return ids.length > 0 && ids.every((id, k) => expected[k]?.contactId === id) ? true : undefined
    })
    t.pass(`${what} (${JSON.stringify(query)}): ${expected.length} shown, in order`)
  }
  await search.fill('contact 12345')
  await shown.getByText(`1 of ${fmt(N)} shown`, { exact: true }).waitFor()
  t.same(await rowIds(), ['contact-12345'])
  await search.fill('')
  await until('everyone again', async () => ((await shown.isHidden()) && (await rowIds()).length > 10 ? true : undefined))
})

t.test('by company and by page: the counts, live; choosing a group lists its contacts', async (t) => {
  const byCompany = widget.getByRole('button', { name: en.viewCompany, exact: true })
  await byCompany.click()
  t.equal(await byCompany.getAttribute('aria-pressed'), 'true')
  const groups = widget.locator('.groups li')
  const groupRow = (label: string): Locator => groups.filter({ has: page.locator('.gl', { hasText: new RegExp(`^${label.replace(/[/.]/g, '\\$&')}$`) }) })
  await groups.first().waitFor()
  t.equal(await groups.count(), 100, 'the 100 largest of 1 000 companies')
  await widget.getByText(en.groupsMore!.replace('{n}', '900'), { exact: true }).waitFor()
  t.equal(await groupRow('Company 5').count(), 0, 'a company not among the first 100 (all have 100 online, by name)')
  const search = widget.getByRole('searchbox')
  await search.fill('company 5')
  await groupRow('Company 5').getByText('100 online', { exact: true }).waitFor()
  // "company 5" matches 111 companies (5, 50–59, 500–599): the first 100 shown, the rest counted.
  t.equal(await groups.count(), 100, 'the first 100 matching companies')
  await widget.getByText(en.groupsMore!.replace('{n}', '11'), { exact: true }).waitFor()

  // Live: one more contact of Company 5 joins; one of its contacts leaves.
  await app.presence.heartbeat(beatOf(N, { clientId: 'client-5', company: 'Company 5' }))
  await groupRow('Company 5').getByText('101 online', { exact: true }).waitFor({ timeout: 5000 })
  t.equal(await groups.first().locator('.gl').textContent(), 'Company 5', 'the largest group first')
  await app.presence.heartbeat(beatOf(1005, { event: 'leave' }))
  await groupRow('Company 5').getByText('100 online', { exact: true }).waitFor({ timeout: 5000 })
  t.pass('the company count follows joins and leaves')

  const byPage = widget.getByRole('button', { name: en.viewPage, exact: true })
  await byPage.click()
  await search.fill('')
  // contact-1005 (page 5) left and contact-100000 (page 0) joined: the invoices as seeded.
  const onInvoices = online.filter((p) => p.path === '/clients/invoices').length
  await groupRow('/clients/invoices').getByText(`${fmt(onInvoices)} online`, { exact: true }).waitFor()
  t.equal(await groups.count(), 40, 'all 40 pages')
  t.equal(await groupRow('/clients/invoices').locator('.gd').textContent(), 'Invoices', 'with its title')
  await app.presence.heartbeat(beatOf(3, { path: '/clients/invoices', title: 'Invoices' }))
  await groupRow('/clients/invoices').getByText(`${fmt(onInvoices + 1)} online`, { exact: true }).waitFor({ timeout: 5000 })
  await groupRow('/clients/page/3').getByText(`${fmt(2500 - 1)} online`, { exact: true }).waitFor()
  t.pass('a page change moves the contact from one page count to the other')

  // Who is on the invoices now: the group's contacts, newest first (contact-3 just moved there).
  await groupRow('/clients/invoices').locator('button').click()
  await widget.locator('.chip').getByText('Page: /clients/invoices', { exact: true }).waitFor()
  t.equal(await widget.getByRole('button', { name: en.viewList, exact: true }).getAttribute('aria-pressed'), 'true', 'back to the list')
  await widget.locator('.shown').getByText(`${fmt(onInvoices + 1)} of ${fmt(N)} shown`, { exact: true }).waitFor()
  const ids = await rowIds()
  t.ok(ids.length > 10 && ids.length < 100, 'the first of them in the document')
  const paths = await rows.locator('.path').allTextContents()
  t.ok(paths.every((path) => path === '/clients/invoices'), 'every row listed is on /clients/invoices')
  // A diff while narrowed: a contact that navigates away leaves the list, one that arrives joins it.
  const leaving = ids[1] as string
  const j = Number(leaving.replace('contact-', ''))
  await app.presence.heartbeat(beatOf(j, { path: '/clients/tickets', title: 'Tickets' }))
  await widget.locator(`.vp li[data-id="${leaving}"]`).waitFor({ state: 'detached', timeout: 5000 })
  await widget.locator('.shown').getByText(`${fmt(onInvoices)} of ${fmt(N)} shown`, { exact: true }).waitFor()
  t.pass('a contact who moved elsewhere leaves the narrowed list')
  await widget.getByRole('button', { name: en.clearGroup }).click()
  await widget.locator('.chip').waitFor({ state: 'hidden' })
  await until('everyone again', async () => ((await widget.locator('.shown').isHidden()) ? true : undefined))
  t.pass('the chip clears the group')
})

t.test('diffs reach the list: a contact who joins is first, one who leaves is gone, the count follows', async (t) => {
  const newcomer = beatOf(N + 1, { name: 'Zoe Newcomer', company: 'Fresh Ltd', clientId: 'client-fresh' })
  const before = Number((await count().textContent())?.replace(/\D/g, ''))
  await app.presence.heartbeat(newcomer)
  await until('the newcomer first', async () => ((await rowsInView())[0] === newcomer.contactId ? true : undefined), 5000)
  await count().getByText(fmt(before + 1), { exact: true }).waitFor()
  t.ok(await widget.locator(`li[data-id="${newcomer.contactId}"]`).evaluate((li) => li.classList.contains('new')), 'highlighted')
  await app.presence.heartbeat({ ...newcomer, event: 'leave' })
  await widget.locator(`li[data-id="${newcomer.contactId}"]`).waitFor({ state: 'detached', timeout: 5000 })
  await count().getByText(fmt(before), { exact: true }).waitFor()
  t.pass('gone, and counted out')
})
