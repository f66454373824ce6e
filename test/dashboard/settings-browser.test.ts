/**
 * The dashboard's settings panel in real headless Chromium against a listening app: offered to
 * admin tokens, filled from GET /admin/api/settings, saved with PUT, the server's 400 message
 * shown inline, absent for staff tokens; the licence section's mount point at its top.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { adminToken, buildTestApp } from '../helpers/app.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { launchChromium } from '../helpers/browser.js'

const root = findProjectRoot()
const en = JSON.parse(readFileSync(join(root, 'dashboard', 'lang', 'en.json'), 'utf8')) as Record<string, string>
const de = JSON.parse(readFileSync(join(root, 'dashboard', 'lang', 'de.json'), 'utf8')) as Record<string, string>
t.setTimeout(120_000)

const app = await buildTestApp(t)
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

const browser: Browser = await launchChromium(t)

async function open(tt: { teardown(fn: () => unknown): void }, fragment: string, locale = 'en-US'): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale })
  tt.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${base}/admin#${fragment}`)
  await page.locator('cat-online-clients[data-state="live"]').waitFor({ timeout: 10_000 })
  return page
}

const panel = (page: Page) => page.locator('cat-online-clients [part="settings"]')
const input = (page: Page, name: string) => page.locator(`cat-online-clients input[name="${name}"]`)
const settingsNow = async (): Promise<Record<string, unknown>> =>
  (await app.inject({ method: 'GET', url: '/admin/api/settings', headers: { authorization: `Bearer ${adminToken()}` } })).json()

t.test('admin: &panel=settings opens the panel with the values in force; a save is applied; a bad value shows the server\'s message', async (t) => {
  const page = await open(t, `token=${adminToken()}&panel=settings`)
  await panel(page).waitFor({ state: 'visible' })
  t.equal(await page.locator('cat-online-clients [part="settings"] > :first-child').getAttribute('id'), 'license', 'the licence section mounts at the top of the panel')
  t.equal(await page.locator('cat-online-clients #license[part="license"]').count(), 1)
  await t.resolves(page.waitForFunction(() => {
    const root = document.querySelector('cat-online-clients')?.shadowRoot
    return (root?.querySelector('input[name="presenceTimeoutS"]') as HTMLInputElement | null)?.value === '75'
  }, undefined, { timeout: 5000 }), 'filled from GET')
  t.equal(await input(page, 'heartbeatIntervalS').inputValue(), '30')
  t.equal(await input(page, 'idleTimeoutS').inputValue(), '600')
  t.equal(await input(page, 'retentionDays').inputValue(), '90')
  t.match(await panel(page).textContent(), en.sourceEnvironment!, 'each value says it is the environment\'s default')

  await input(page, 'presenceTimeoutS').fill('20')
  await page.locator('cat-online-clients button.save').click()
  const error = page.locator('cat-online-clients [part="settings-error"]')
  await error.getByText('presenceTimeoutS: expected whole seconds above heartbeatIntervalS (30), got 20', { exact: true }).waitFor({ timeout: 5000 })
  t.pass('the server\'s 400 message is shown inline')
  t.equal((await settingsNow()).presenceTimeoutS, 75, 'nothing saved')

  await input(page, 'presenceTimeoutS').fill('45')
  await input(page, 'retentionDays').fill('30')
  await page.locator('cat-online-clients button.save').click()
  await page.locator('cat-online-clients [part="settings"]').getByText(en.saved!, { exact: true }).waitFor({ timeout: 5000 })
  t.equal(await error.textContent(), '', 'the earlier message is gone')
  const saved = await settingsNow()
  t.equal(saved.presenceTimeoutS, 45)
  t.equal(saved.retentionDays, 30)
  t.same(saved.sources, { heartbeatIntervalS: 'environment', presenceTimeoutS: 'saved', idleTimeoutS: 'environment', diffIntervalMs: 'environment', retentionDays: 'saved' }, 'only the changed values were sent')
  t.equal(app.settings.current.presenceTimeoutS, 45, 'in force on the server')
})

t.test('admin without &panel: the Settings button opens and closes the panel, in the browser\'s language', async (t) => {
  const page = await open(t, `token=${adminToken()}`, 'de-DE')
  const button = page.locator('cat-online-clients [part="settings-button"]')
  await page.locator('cat-online-clients[data-role="admin"]').waitFor({ timeout: 5000 })
  await button.waitFor({ state: 'visible' })
  t.equal(await button.textContent(), de.settings)
  t.notOk(await panel(page).isVisible(), 'closed until asked')
  await button.click()
  await panel(page).waitFor({ state: 'visible' })
  t.match(await panel(page).textContent(), de.settingsHeading!)
  t.equal(await button.getAttribute('aria-expanded'), 'true')
  await button.click()
  await panel(page).waitFor({ state: 'hidden' })
})

t.test('staff: no Settings button and no panel, even with &panel=settings', async (t) => {
  const page = await open(t, `token=${adminToken({ role: 'staff' })}&panel=settings`)
  await page.locator('cat-online-clients[data-role="staff"]').waitFor({ timeout: 5000 })
  // The list works for staff; the settings are not offered.
  t.equal(await page.locator('cat-online-clients [part="settings-button"]').isVisible(), false)
  t.equal(await panel(page).isVisible(), false)
  t.equal(await page.locator('cat-online-clients input[name="presenceTimeoutS"]').isVisible(), false)
})
