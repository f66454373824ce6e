/**
 * The dashboard's licence panel in real headless Chromium against a running server with
 * licensing on and the real licence server on loopback (issue 18, "How it is judged"): with no
 * key the page explains the 402 and offers the key entry; a key issued with the vendor's admin
 * command is activated there, and the live list appears; revoked, the list gives way to the licence.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl } from '../helpers/app.js'
import { startLicenseServer, DOMAIN } from '../helpers/license.js'
import { runTs } from '../helpers/run-ts.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { launchChromium } from '../helpers/browser.js'

const en = JSON.parse(readFileSync(join(findProjectRoot(), 'dashboard', 'lang', 'en.json'), 'utf8')) as Record<string, string>
t.setTimeout(180_000)

const server = await startLicenseServer(t, { now: Date.now })
const app = await buildTestApp(t, { licensePollMs: 0, env: server.env({ CAT_HEARTBEAT_INTERVAL_S: '5', CAT_PRESENCE_TIMEOUT_S: '60' }) })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

const browser: Browser = await launchChromium(t)

async function open(t: { teardown(fn: () => unknown): void }, token: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' })
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${base}/admin#token=${token}`)
  return page
}

const widget = (page: Page) => page.locator('cat-online-clients')
const panel = (page: Page) => page.locator('cat-online-clients section.lic')
const shadowText = (page: Page): Promise<string> => widget(page).evaluate((el) => el.shadowRoot?.textContent ?? '')

// A contact browses the portal while the install is unlicensed: the portal side works.
const contact = clientToken({ sub: 'contact-licensed', name: 'Lena Licence', company: 'Keyholders' })
await ensureConsent(app, contact)
const beat = await app.inject(heartbeatUrl({ token: contact, sid: 'tab-licence-1', path: '/clients/invoices', title: 'Invoices', event: 'nav' }))
if (beat.statusCode !== 204) throw new Error(`heartbeat answered ${beat.statusCode}`)

t.test('a staff token sees the licence state and the 402 explanation, without the key entry', async (t) => {
  const page = await open(t, adminToken({ role: 'staff', sub: 'staff-2' }))
  await page.locator('cat-online-clients[data-state="refused"]').waitFor()
  await panel(page).getByText(en.licenseAdminOnly!).waitFor()
  t.notOk(await panel(page).locator('form').isVisible(), 'no key entry for staff')
  t.match(await shadowText(page), en.licenseRequired!)
})

t.test('no key: the dashboard says what to do; the key issued by the admin command activates; the online list appears', async (t) => {
  const page = await open(t, adminToken())
  await page.locator('cat-online-clients[data-state="refused"]').waitFor()
  await panel(page).getByText(en.licenseStateUnlicensed!, { exact: true }).waitFor()
  const text = await shadowText(page)
  t.match(text, en.licenseRequired, 'the 402 in words')
  t.match(text, en.licenseRequiredDetail, 'and what to do')
  t.match(text, en.licenseHelpUnlicensed)
  t.match(text, DOMAIN, 'the licensed domain')
  t.notMatch(text, en.refused!, 'not "Access refused."')
  t.equal(await widget(page).locator('li').count(), 0, 'no contact shown')
  t.equal(await widget(page).locator('.licbtn').getAttribute('aria-expanded'), 'true', 'the panel opened by itself')

  // A mistyped key: the server does not know it.
  await panel(page).locator('input[name="key"]').fill('CAT-WRONG-WRONG-WRONG-WRONG')
  await panel(page).getByRole('button', { name: en.licenseActivate }).click()
  await panel(page).getByText(en.licenseStateInvalid!, { exact: true }).waitFor()
  t.match(await panel(page).textContent(), en.licenseHelpInvalid)

  const issued = await runTs('license-server/src/cli.ts', ['issue', '--domain', DOMAIN, '--valid-days', '30'], { PATH: process.env.PATH, HOME: process.env.HOME, LICENSE_SERVER_DB: server.dbFile })
  t.equal(issued.code, 0, issued.stderr)
  const key = issued.stdout.trim()
  await panel(page).locator('input[name="key"]').fill(key)
  await panel(page).getByRole('button', { name: en.licenseActivate }).click()
  await panel(page).getByText(en.licenseStateActive!, { exact: true }).waitFor()
  await panel(page).getByText(en.licenseActivated!).waitFor()
  t.match(await panel(page).textContent(), `…${key.slice(-4)}`, 'the key in use, by its last characters')

  await page.locator('cat-online-clients[data-state="live"]').waitFor({ timeout: 10_000 })
  await widget(page).locator('li[data-id="contact-licensed"]').getByText('Lena Licence').waitFor()
  t.equal(await widget(page).locator('.n').textContent(), '1', 'the online list appears')
  t.notMatch(await shadowText(page), en.licenseRequiredDetail, 'the 402 explanation is gone')
  t.equal((await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken()}` } })).statusCode, 200)
  t.equal((await app.inject('/admin/widget.js')).statusCode, 200, 'the embeddable widget is served again')

  // The vendor revokes the key: at the next validation the open dashboard is closed (4402),
  // reconnects, is refused with 402 and shows the licence instead of the list.
  const revoked = await runTs('license-server/src/cli.ts', ['revoke', key], { PATH: process.env.PATH, HOME: process.env.HOME, LICENSE_SERVER_DB: server.dbFile })
  t.equal(revoked.stdout.trim(), `${key} revoked`)
  await app.license.validate()
  await page.locator('cat-online-clients[data-state="refused"]').waitFor({ timeout: 10_000 })
  await panel(page).getByText(en.licenseStateInvalid!, { exact: true }).waitFor()
  t.match(await shadowText(page), en.licenseRequiredDetail, 'the 402 explanation again')
  t.equal(await widget(page).locator('li').count(), 0, 'no contact shown any more')
})
