/**
 * The security headers of the pages and the widget (@fastify/helmet), and in Debian's Chromium
 * that the admin dashboard and the demo portal work under their Content-Security-Policy with
 * no violation, while the heartbeat and the snippet keep only the headers they need.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl, until } from '../helpers/app.js'
import { wsBase } from '../helpers/ws.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { launchChromium } from '../helpers/browser.js'

t.setTimeout(180_000)
const snippetEn = JSON.parse(readFileSync(join(findProjectRoot(), 'client-snippet', 'lang', 'en.json'), 'utf8')) as Record<string, string>

const app = await buildTestApp(t)
const origin = (await wsBase(app)).replace(/^ws:/, 'http:')

t.test('headers: a CSP, no-referrer and nosniff on the pages; the widget loadable cross-origin; none of it on the heartbeat or the snippet', async (t) => {
  for (const url of ['/admin', '/demo']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    const csp = String(res.headers['content-security-policy'])
    t.match(csp, /default-src 'none'/, `${url}: nothing but what the policy names`)
    t.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/, `${url}: scripts from this server and its own inline script by hash`)
    t.notMatch(csp, /script-src[^;]*'unsafe-inline'/, `${url}: no inline script but its own`)
    t.match(csp, /connect-src 'self'/)
    t.match(csp, /frame-ancestors 'none'/)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${url}: no Referer`)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  }
  const widget = await app.inject('/admin/widget.js')
  t.equal(widget.headers['x-content-type-options'], 'nosniff')
  t.equal(widget.headers['cross-origin-resource-policy'], 'cross-origin', 'another product\'s page may load it')
  t.notOk(widget.headers['content-security-policy'], 'no CSP on a script')

  const ann = clientToken({ sub: 'ann' })
  await ensureConsent(app, ann)
  const beat = await app.inject(heartbeatUrl({ token: ann, sid: 'tab-ann-0000' }))
  t.equal(beat.statusCode, 204)
  const snippet = await app.inject('/clients/cat_consent_js')
  for (const res of [beat, snippet]) {
    for (const header of ['content-security-policy', 'x-frame-options', 'strict-transport-security', 'cross-origin-opener-policy', 'x-dns-prefetch-control']) {
      t.notOk(res.headers[header], `${res.statusCode === 204 ? 'the heartbeat' : 'the snippet'} has no ${header}`)
    }
  }
})

t.test('in Chromium: the dashboard and the demo portal work under their CSP, with no violation', async (t) => {
  const browser: Browser = await launchChromium(t)
  const context = await browser.newContext()
  // Every violation the page reports, and every console line that names the policy.
  await context.addInitScript(() => {
    const seen: string[] = []
    ;(window as unknown as { cspViolations: string[] }).cspViolations = seen
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`))
  })
  const consoleViolations: string[] = []
  const open = async (url: string): Promise<Page> => {
    const page = await context.newPage()
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) consoleViolations.push(message.text())
    })
    await page.goto(url)
    return page
  }
  const violations = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)

  // The demo portal: the banner shows, Accept starts the heartbeats, a page change is sent.
  const demo = await open(`${origin}/demo`)
  await demo.getByRole('button', { name: snippetEn.accept, exact: true }).click()
  const contact = await until('the demo contact is online', async () => {
    const online = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken()}` } })
    return (online.json() as { online: { contactId: string; path: string }[] }).online.find((p) => p.contactId.startsWith('demo-'))
  })
  await demo.getByRole('link', { name: 'Invoices' }).click()
  await until('the page change reaches the server', async () => {
    const online = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken()}` } })
    return (online.json() as { online: { contactId: string; title: string }[] }).online.some((p) => p.contactId === contact.contactId && p.title.startsWith('Invoices')) ? true : undefined
  })
  t.same(await violations(demo), [], 'the demo portal: no CSP violation')

  // The dashboard: the widget connects over the WebSocket and lists the demo contact.
  const dashboard = await open(`${origin}/admin#token=${encodeURIComponent(adminToken())}`)
  await until('the dashboard lists the demo contact', async () => {
    const text = await dashboard.locator('cat-online-clients').evaluate((el) => el.shadowRoot?.textContent ?? '')
    return text.includes(contact.contactId.slice(5)) ? true : undefined
  })
  t.same(await violations(dashboard), [], 'the dashboard: no CSP violation')
  t.same(consoleViolations, [], 'nothing about the policy in either console')
})
