/**
 * A visitor of a public demo install, in real headless Chromium: the server runs in production
 * with demo mode and simulated contacts; the visitor opens /demo, accepts the banner, follows
 * the page's link to the dashboard, and sees the simulated contacts and themself on it, live.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { findProjectRoot } from '../../src/activity/database.js'
import { createTestDataDir } from '../helpers/database.js'
import { startInstance } from '../helpers/instance.js'
import { launchChromium } from '../helpers/browser.js'

const snippetEn = JSON.parse(readFileSync(join(findProjectRoot(), 'client-snippet', 'lang', 'en.json'), 'utf8')) as Record<string, string>
const CONTACTS = 20

t.test('a visitor of /demo watches the simulated contacts and themself on the read-only dashboard', async (t) => {
  const instance = await startInstance(t, {
    NODE_ENV: 'production',
    CAT_DEMO_MODE: '1',
    CAT_DEMO_TRAFFIC: String(CONTACTS),
    CAT_HEARTBEAT_INTERVAL_S: '2',
    CAT_DATA_DIR: createTestDataDir(t, 'demo-browser'),
  })
  const browser = await launchChromium(t)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' })
  const portal = await context.newPage()
  const page = await portal.goto(`${instance.origin}/demo`)
  // What the portal answered, named when it is not the page (the test then stops here).
  t.equal(page?.status(), 200, `GET /demo: ${page === null ? 'no response' : (await page.text()).slice(0, 300)}`)
  const visitor = await portal.locator('p strong').first().textContent()
  t.match(visitor, /^demo-[a-z0-9]+$/, 'the visitor is a demo contact')
  await portal.getByRole('button', { name: snippetEn.accept, exact: true }).click()

  const [dashboard] = await Promise.all([context.waitForEvent('page'), portal.getByRole('link', { name: 'open the admin dashboard' }).click()])
  if (dashboard === undefined) throw new Error('no dashboard page')
  t.match(dashboard.url(), /\/admin#token=eyJ/, 'the link opens the dashboard with its token in the fragment')
  const widget = dashboard.locator('cat-online-clients')
  await widget.locator('.n', { hasText: String(CONTACTS + 1) }).waitFor({ timeout: 15_000 })
  t.pass(`the dashboard counts ${CONTACTS} simulated contacts and the visitor`)
  await widget.locator(`li[data-id="${visitor}"]`).waitFor({ timeout: 5000 })
  t.pass('the visitor has a row')
  const rows = await widget.locator('li').evaluateAll((lis) => lis.map((li) => li.textContent ?? ''))
  t.ok(rows.some((row) => /Northwind Traders/.test(row)) && rows.some((row) => /Kaffeehaus Berger GmbH/.test(row)), 'rows of the demo companies')
  t.ok(rows.some((row) => /\/clients/.test(row)), 'on portal pages')
})
