/**
 * The Perfex module's PHP signer (client-snippet/perfex) against the real server (issue 5):
 * tokens minted by `php` with CatTokens are accepted where they should be and refused where they
 * should not, and the module's hooks render what the server accepts. Perfex itself is not here:
 * the hooks run against stand-ins for the Perfex functions they call (tests/render.php).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, clientToken, ensureConsent, heartbeatUrl, SECRET } from '../helpers/app.js'
import { findProjectRoot } from '../../src/activity/database.js'

/**
 * PHP runs synchronously here and holds the event loop the app shares, for a second or more on a
 * busy machine: overload shedding would read that as load and answer 503. It is off in this file.
 */
const PHP_BLOCKS = { CAT_MAX_EVENT_LOOP_DELAY_MS: '0' }

const root = findProjectRoot()
const PERFEX = join(root, 'client-snippet', 'perfex')
const SID = 'perfex-tab-0001'

// scripts/test-services.sh installs php-cli; a missing php is a failure, not a skip.
const version = spawnSync('php', ['--version'], { encoding: 'utf8' })
if (version.error !== undefined || version.status !== 0) throw new Error('php is missing: run scripts/test-services.sh (apt-get install php-cli)')

/** Runs php with no CAT_SECRET in its environment, so only the secret given is used. */
function php(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env }
  delete env.CAT_SECRET
  const res = spawnSync('php', args, { encoding: 'utf8', env })
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

function phpOk(args: string[]): string {
  const res = php(args)
  if (res.status !== 0) throw new Error(`php ${args[0]} exited ${res.status}: ${res.stderr}`)
  return res.stdout.trim()
}

const MINT = join(PERFEX, 'tests', 'mint.php')
const RENDER = join(PERFEX, 'tests', 'render.php')

function phpClientToken(c: { contactId: string; clientId: string; name?: string; company?: string; secret?: string; ttl?: number }): string {
  return phpOk([MINT, 'client', c.contactId, c.clientId, c.name ?? '', c.company ?? '', c.secret ?? SECRET, String(c.ttl ?? 3600)])
}

function phpAdminToken(a: { staffId?: string; name?: string; secret?: string; ttl?: number } = {}): string {
  return phpOk([MINT, 'admin', a.staffId ?? '1', a.name ?? 'Perfex Admin', a.secret ?? SECRET, String(a.ttl ?? 3600)])
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

async function consent(app: FastifyInstance, token: string): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, decision: 'granted', version: 'perfex-test', locale: 'en' }) })
  return res.statusCode
}

async function navigate(app: FastifyInstance, token: string, path = '/clients/tickets', title = 'Tickets'): Promise<number> {
  return (await app.inject(heartbeatUrl({ token, sid: SID, event: 'nav', path, title }))).statusCode
}

async function online(app: FastifyInstance, adminToken: string): Promise<{ status: number; body: { online?: Record<string, unknown>[]; error?: { code: string } } }> {
  const res = await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${adminToken}` } })
  return { status: res.statusCode, body: res.json() }
}

/** Every PHP file of the module and its test scripts. */
function phpFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return phpFiles(path)
    return entry.name.endsWith('.php') ? [path] : []
  })
}

t.test('php -l: every PHP file under client-snippet/perfex parses', async (t) => {
  const files = phpFiles(PERFEX)
  t.ok(files.length >= 8, `found ${files.length} PHP files`)
  for (const file of files) {
    const res = php(['-l', file])
    t.equal(res.status, 0, `${relative(root, file)}: ${res.status === 0 ? 'no syntax errors' : res.stdout + res.stderr}`)
  }
})

t.test('the tokens CatTokens signs have the contract header and claims', async (t) => {
  const before = Math.floor(Date.now() / 1000)
  const client = phpClientToken({ contactId: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale', ttl: 600 })
  t.same(headerOf(client), { alg: 'HS256', typ: 'JWT', kid: '0' })
  const claims = claimsOf(client)
  t.match(claims, { aud: 'cat:client', sub: '42', client_id: '7', name: 'Zoë Müller', company: 'Société Générale' })
  t.ok(typeof claims.iat === 'number' && claims.iat >= before && claims.iat <= before + 5, 'iat is now')
  t.equal(claims.exp, (claims.iat as number) + 600, 'exp = iat + ttl')
  t.notOk(/[=+/]/.test(client), 'base64url without padding')

  const admin = claimsOf(phpAdminToken({ staffId: '3', name: '' }))
  t.equal(admin.aud, 'cat:admin')
  t.equal(admin.sub, '3')
  t.notOk('name' in admin, 'an empty name is left out')
  t.notOk('client_id' in admin)

  const long = claimsOf(phpClientToken({ contactId: '1', clientId: '2', name: `  ${'é'.repeat(300)}  `, company: '   ' }))
  t.equal(long.name, 'é'.repeat(200), 'names are trimmed and cut to the 200 characters the server keeps')
  t.notOk('company' in long, 'a blank company is left out')

  const short = php([MINT, 'client', '1', '2', 'a', 'b', 'too-short'])
  t.equal(short.status, 1, 'a secret shorter than 16 characters is refused, as on the server')
  t.match(short.stderr, /at least 16/)
})

t.test('a client token from PHP is accepted: consent, heartbeat, and the dashboard shows its name and company', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const contacts = [
    { contactId: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale' },
    { contactId: '43', clientId: '8', name: 'Łukasz Żółć', company: '株式会社テスト' },
    { contactId: '44', clientId: '8', name: 'Ann "Nan" O\'Brien <ann@example.com>', company: 'Smith & Sons' },
  ]
  for (const contact of contacts) {
    const token = phpClientToken(contact)
    t.equal(await consent(app, token), 204, `consent granted for ${contact.name}`)
    t.equal(await navigate(app, token), 204, `nav heartbeat of ${contact.name}`)
  }

  const list = await online(app, phpAdminToken())
  t.equal(list.status, 200, 'the admin token from PHP reads the online list')
  const byId = new Map((list.body.online ?? []).map((p) => [p.contactId, p]))
  t.equal(byId.size, contacts.length)
  for (const contact of contacts) {
    t.match(byId.get(contact.contactId), { clientId: contact.clientId, name: contact.name, company: contact.company, path: '/clients/tickets', title: 'Tickets', state: 'active', tabs: 1 }, contact.name)
  }
})

t.test('an admin token from PHP works on /admin/api/online', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const list = await online(app, phpAdminToken({ staffId: '1', name: 'Zoë Admin' }))
  t.equal(list.status, 200)
  t.same(list.body.online, [])
})

t.test('a tampered token is refused with 401: one payload character changed, signature kept', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const token = phpClientToken({ contactId: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale' })
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const i = Math.floor(payload.length / 2)
  const flipped = payload[i] === 'A' ? 'B' : 'A'
  const tampered = `${header}.${payload.slice(0, i)}${flipped}${payload.slice(i + 1)}.${signature}`
  t.not(tampered, token)
  t.equal(await consent(app, tampered), 401, 'consent refuses it')
  t.equal(await navigate(app, tampered), 401, 'the heartbeat refuses it')

  // The attack that matters: the same signature on a payload naming another contact.
  const other = Buffer.from(JSON.stringify({ ...claimsOf(token), sub: '43' })).toString('base64url')
  t.equal(await consent(app, `${header}.${other}.${signature}`), 401, 'another contact id under the old signature is refused')

  const admin = phpAdminToken()
  const [ah, ap, as] = admin.split('.') as [string, string, string]
  const j = Math.floor(ap.length / 2)
  const adminTampered = `${ah}.${ap.slice(0, j)}${ap[j] === 'A' ? 'B' : 'A'}${ap.slice(j + 1)}.${as}`
  const res = await online(app, adminTampered)
  t.equal(res.status, 401, 'a tampered admin token is refused')
  t.equal(res.body.error?.code, 'invalid_token')

  t.equal(await navigate(app, token), 403, 'the untampered token is fine (consent was never recorded, so consent_required)')
  t.same((await app.presence.snapshot()).online, [], 'nothing stored')
})

t.test('a token of the wrong audience, expired, or signed with another secret is refused', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const client = phpClientToken({ contactId: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale' })
  const asAdmin = await online(app, client)
  t.equal(asAdmin.status, 401, 'a client token presented as admin')
  t.equal(asAdmin.body.error?.code, 'invalid_token')

  const admin = phpAdminToken()
  t.equal(await consent(app, admin), 401, 'an admin token presented as a client token (consent)')
  t.equal(await navigate(app, admin), 401, 'an admin token presented as a client token (heartbeat)')

  const expiredClient = phpClientToken({ contactId: '42', clientId: '7', ttl: -120 })
  t.equal(await consent(app, expiredClient), 401, 'an expired client token (ttl -120)')
  t.equal(await navigate(app, expiredClient), 401, 'an expired client token on the heartbeat')
  t.equal((await online(app, phpAdminToken({ ttl: -120 }))).status, 401, 'an expired admin token (ttl -120)')

  const foreign = phpClientToken({ contactId: '42', clientId: '7', secret: 'another-secret-0123456789' })
  t.equal(await consent(app, foreign), 401, 'signed with another secret')
  t.same((await app.presence.snapshot()).online, [], 'nothing stored')
})

t.test('rotation: CatTokens signs with the first secret of a comma list, and says kid "0"', async (t) => {
  const next = 'next-secret-0123456789abcdef'
  // The server mid-rotation: the new secret first (it signs and is kid 0), the old one still verifies.
  const app = await buildTestApp(t, { env: { ...PHP_BLOCKS, CAT_SECRET: `${next},${SECRET}` } })
  const token = phpClientToken({ contactId: '42', clientId: '7', secret: `${next},${SECRET}` })
  t.equal(await consent(app, token), 204, 'Perfex configured with the same list: its first secret, kid 0')
  const old = phpClientToken({ contactId: '43', clientId: '7', secret: SECRET })
  t.equal(await consent(app, old), 401, 'Perfex still on the old secret signs kid 0, which now names the new one: refused')
})

interface Scenario {
  hook: 'footer' | 'head' | 'page' | 'helper' | 'widget' | 'widgets_filter' | 'settings' | 'settings_url' | 'controller' | 'install' | 'uninstall' | 'uninstall_hook' | 'migrate' | 'secrets'
  /** Settings as an admin enters them; the harness stores the secrets among them encrypted, as the settings page does. */
  options?: Record<string, string>
  /** Values put into the options table as they are. */
  rawOptions?: Record<string, string>
  contact?: { id: string; clientId: string; name: string; company: string } | null
  loggedInAsClient?: boolean
  language?: string
  /** view: the module's permission; viewCustomers: core's staff_can('view', 'customers'). */
  staff?: { id: number; admin?: boolean; view?: boolean; viewCustomers?: boolean } | null
  /** Rows of Perfex tables, by full name (db_prefix() is "tbl"). */
  db?: { tblcustomer_admins?: { staff_id: string; customer_id: string; date_assigned: string }[] }
  uri?: string
  post?: Record<string, string>
}

function render(scenario: Scenario): string {
  return phpOk([RENDER, JSON.stringify(scenario)])
}

interface ControllerResult {
  status: number | null
  headers: string[]
  output: string
  redirect: string | null
  alerts: [string, string][]
  options: Record<string, string>
  session: Record<string, unknown>
}

/** Runs the admin controller's method named by `uri` (admin/client_activity_tracker/METHOD). */
function controller(scenario: Omit<Scenario, 'hook'> & { uri: string }): ControllerResult {
  return JSON.parse(render({ ...scenario, hook: 'controller' })) as ControllerResult
}

/** The widget's token endpoint; the widget test checks that its page names this one. */
const TOKEN_URI = 'admin/client_activity_tracker/notifications_check'

/** What the widget's token endpoint answers the staff member of the scenario. */
function widgetToken(scenario: Omit<Scenario, 'hook'>): string {
  const res = controller({ ...scenario, uri: TOKEN_URI })
  if (res.status !== 200) throw new Error(`the token endpoint answered ${res.status}: ${res.output}`)
  return (JSON.parse(res.output) as { token: string }).token
}

function attribute(html: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(html)
  return match?.[1]?.replace(/&quot;/g, '"').replace(/&#0?39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
}

t.test('the customers-area footer hook embeds the snippet with a client token the server accepts', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const options = { cat_server_url: 'https://presence.example.com/', cat_secret: SECRET }
  const contact = { id: '42', clientId: '7', name: 'Zoë "<b>" Müller', company: 'Société Générale & Co' }
  const html = render({ hook: 'footer', options, contact, language: 'german' })
  t.match(html, /^<script src="https:\/\/presence\.example\.com\/clients\/cat_consent_js\?lang=de" data-token="[A-Za-z0-9_\-.]+" defer><\/script>$/, 'one script tag: the snippet from the configured server, in the portal language')
  const token = attribute(html, 'data-token') ?? ''
  t.equal(await consent(app, token), 204, 'the footer token is accepted')
  t.equal(await navigate(app, token), 204)
  t.match((await app.presence.snapshot()).online[0], { contactId: '42', clientId: '7', name: contact.name, company: contact.company })

  t.equal(render({ hook: 'footer', options, contact: null }), '', 'nothing for a visitor who is not logged in')
  t.equal(render({ hook: 'footer', options, contact, loggedInAsClient: true }), '', 'nothing for staff using "Login as client"')
  t.equal(render({ hook: 'footer', options: { cat_secret: SECRET }, contact }), '', 'nothing without a server URL')
  t.equal(render({ hook: 'footer', options: { cat_server_url: 'javascript:alert(1)', cat_secret: SECRET }, contact }), '', 'nothing for a server URL that is not http(s)')
  const noSecret = php([RENDER, JSON.stringify({ hook: 'footer', options: { cat_server_url: 'https://presence.example.com' }, contact })])
  t.equal(noSecret.status, 0, 'a missing secret does not break the page')
  t.equal(noSecret.stdout, '')
  t.match(noSecret.stderr, /no snippet: CatTokens: no secret/, 'it is logged')
  t.notMatch(render({ hook: 'footer', options, contact, language: 'klingon' }), /lang=/, 'an unknown portal language: the snippet picks from Accept-Language')
})

t.test('the dashboard widget: registered for staff who may view, rendering the element and a token provider', async (t) => {
  t.same(JSON.parse(render({ hook: 'widgets_filter', staff: { id: 1, admin: true } })), [{ path: 'client_activity_tracker/widgets/online_clients', container: 'top-12' }], 'admins get it')
  t.same(JSON.parse(render({ hook: 'widgets_filter', staff: { id: 2, view: true } })), [{ path: 'client_activity_tracker/widgets/online_clients', container: 'top-12' }], 'staff with the view permission get it')
  t.same(JSON.parse(render({ hook: 'widgets_filter', staff: { id: 3 } })), [], 'other staff do not')

  const html = render({ hook: 'widget', options: { cat_server_url: 'https://presence.example.com/', cat_secret: SECRET }, staff: { id: 1, admin: true } })
  t.match(html, /^<div class="widget" id="widget-cat_online_clients"/, 'one root element, as Perfex requires of a widget view')
  t.match(html, '<script src="https://presence.example.com/admin/widget.js" async></script>', 'widget.js loads async: a slow or down server does not hold up the dashboard')
  t.match(html, "window.customElements.whenDefined('cat-online-clients')", 'and the token provider waits for the element to be defined')
  t.match(html, '<cat-online-clients id="cat-online-clients" server="https://presence.example.com"></cat-online-clients>')
  t.match(html, `var tokenUrl = "https://crm.example.com/${TOKEN_URI}";`)
  t.match(html, 'element.tokenProvider = tokenProvider;')
  t.notMatch(html, /eyJ/, 'no token in the page: the provider fetches one')

  const unconfigured = render({ hook: 'widget', options: {}, staff: { id: 1, admin: true } })
  t.notMatch(unconfigured, /<cat-online-clients/, 'not configured: no element')
  t.match(unconfigured, /not configured yet/)
})

t.test('the module settings page links to the presence server\'s settings panel; the link mints an admin token the server takes, widget tokens of other staff are role staff', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const options = { cat_server_url: 'https://presence.example.com/', cat_secret: SECRET }
  const page = render({ hook: 'settings', options, staff: { id: 1, admin: true } })
  t.match(page, '<a class="btn btn-default" href="https://crm.example.com/admin/client_activity_tracker/server_settings" target="_blank" rel="noopener noreferrer">Open the presence server settings</a>', 'a link to the module\'s redirect')
  t.notMatch(page, /eyJ/, 'no token in the page: it is minted when the link is followed')
  // Perfex's _l() runs sprintf with its own label argument (tests/lang.php stands in for it).
  t.match(page, "must include this CRM&#039;s origin (https://crm.example.com).", 'the help names this CRM\'s origin, passed to _l() as its label')
  const unset = render({ hook: 'settings', options: { cat_secret: SECRET }, staff: { id: 1, admin: true } })
  t.notMatch(unset, /server_settings/, 'no link without a server URL')
  t.match(unset, 'Set the presence server URL above first.')

  const url = render({ hook: 'settings_url', options, staff: { id: 1, admin: true } })
  const found = /^https:\/\/presence\.example\.com\/admin#token=([A-Za-z0-9_\-.]+)&panel=settings$/.exec(url)
  t.ok(found, `the dashboard with its settings panel open, the token in the fragment: ${url.slice(0, 60)}…`)
  const token = found?.[1] ?? ''
  t.equal(claimsOf(token).role, 'admin')
  const settings = await app.inject({ url: '/admin/api/settings', headers: { authorization: `Bearer ${token}` } })
  t.equal(settings.statusCode, 200, 'the server answers its settings to that token')

  const staffToken = widgetToken({ options, staff: { id: 2, view: true, viewCustomers: true } })
  t.equal(claimsOf(staffToken).role, 'staff', 'staff who may only view get role staff')
  t.equal((await app.inject({ url: '/admin/api/settings', headers: { authorization: `Bearer ${staffToken}` } })).statusCode, 403, 'so they cannot change the settings')
  t.equal((await app.inject({ url: '/admin/api/online', headers: { authorization: `Bearer ${staffToken}` } })).statusCode, 200, 'and still watch')
  t.equal(claimsOf(widgetToken({ options, staff: { id: 1, admin: true } })).role, 'admin', 'Perfex admins get role admin')
  t.equal(claimsOf(phpOk([MINT, 'admin', '5', 'Ann', SECRET, '600', 'staff'])).role, 'staff', 'mint.php takes a role')
})

t.test('the clients claim: staff who see only their assigned customers get exactly those, others none; the server takes the token', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const options = { cat_server_url: 'https://presence.example.com', cat_secret: SECRET }
  // customer_admins as Perfex keeps it: staff 2 looks after customers 12 and 40 (listed twice
  // when assigned twice), staff 3 after 13, staff 5 after 12.
  const db = {
    tblcustomer_admins: [
      { staff_id: '2', customer_id: '12', date_assigned: '2026-01-01 00:00:00' },
      { staff_id: '3', customer_id: '13', date_assigned: '2026-01-01 00:00:00' },
      { staff_id: '2', customer_id: '40', date_assigned: '2026-01-02 00:00:00' },
      { staff_id: '5', customer_id: '12', date_assigned: '2026-01-02 00:00:00' },
      { staff_id: '2', customer_id: '12', date_assigned: '2026-01-03 00:00:00' },
    ],
  }
  const restricted = claimsOf(widgetToken({ options, db, staff: { id: 2, view: true } }))
  t.same(restricted.clients, ['12', '40'], 'staff without staff_can(view, customers): their customer_admins rows, once each, as strings')
  t.equal(restricted.role, 'staff')
  t.same(claimsOf(widgetToken({ options, db, staff: { id: 4, view: true } })).clients, [], 'assigned to no customer: an empty list, they see nobody')
  t.notOk('clients' in claimsOf(widgetToken({ options, db, staff: { id: 2, view: true, viewCustomers: true } })), 'staff_can(view, customers): no claim, every customer')
  t.notOk('clients' in claimsOf(widgetToken({ options, db, staff: { id: 1, admin: true } })), 'an admin: no claim, every customer')

  // Contacts of customers 12, 13 and 40 online: staff 2 sees those of 12 and 40.
  for (const [contact, customer] of [['c12', '12'], ['c13', '13'], ['c40', '40']] as const) {
    const client = clientToken({ sub: contact, clientId: customer })
    await ensureConsent(app, client)
    const beat = await app.inject(heartbeatUrl({ token: client, sid: `tab-${contact}-0001`, event: 'nav', path: '/clients' }))
    t.equal(beat.statusCode, 204)
  }
  const token = widgetToken({ options, db, staff: { id: 2, view: true } })
  const list = await online(app, token)
  t.equal(list.status, 200, 'the server takes a token with the clients claim')
  t.same(list.body.online?.map((p) => p.contactId).sort(), ['c12', 'c40'], 'and shows only the contacts of the customers assigned to the staff member')
  t.equal((await online(app, widgetToken({ options, db, staff: { id: 1, admin: true } }))).body.online?.length, 3, 'an admin sees all three')

  const minted = phpOk([MINT, 'admin', '7', 'Ann', SECRET, '600', 'staff', '["12", 40, "12"]'])
  t.same(claimsOf(minted).clients, ['12', '40'], 'mint.php takes the client ids as a JSON array')
  t.notOk('clients' in claimsOf(phpOk([MINT, 'admin', '7', 'Ann', SECRET, '600', 'staff'])), 'and leaves the claim out without one')
  t.equal(php([MINT, 'admin', '7', 'Ann', SECRET, '600', 'staff', '[""]']).status, 1, 'an empty client id is refused')
})

t.test('CatTokens.php refuses to run without BASEPATH, as Perfex asks of every module file', async (t) => {
  const file = join(PERFEX, 'client_activity_tracker', 'libraries', 'CatTokens.php')
  const res = php(['-r', `require ${JSON.stringify(file)}; echo class_exists('CatTokens') ? 'loaded' : 'absent';`])
  t.equal(res.stdout, 'No direct script access allowed', 'a direct request stops at the guard')
  const defined = php(['-r', `define('BASEPATH', '/'); require ${JSON.stringify(file)}; echo class_exists('CatTokens') ? 'loaded' : 'absent';`])
  t.equal(defined.stdout, 'loaded', 'with BASEPATH defined (inside Perfex, or by mint.php) it loads')
})

t.test('the widget\'s token refresh leaves a staff member\'s "Login as client" session alone, as core spares notifications_check', async (t) => {
  const options = { cat_server_url: 'https://presence.example.com', cat_secret: SECRET }
  const contact = { id: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale' }
  const staff = { id: 1, admin: true }
  const loggedInAs = { client_user_id: '7', contact_user_id: '42', client_logged_in: true, logged_in_as_client: true }

  const html = render({ hook: 'widget', options, staff })
  const tokenUrl = /var tokenUrl = "https:\/\/crm\.example\.com\/([^"]+)";/.exec(html)?.[1] ?? ''
  const refresh = controller({ options, staff, contact, loggedInAsClient: true, uri: tokenUrl })
  t.equal(refresh.status, 200, `the widget's URL (${tokenUrl}) answers a token`)
  t.ok((JSON.parse(refresh.output) as { token?: string }).token, 'with a token')
  t.strictSame(refresh.session, loggedInAs, 'and the customers-area session the staff member opened is still there')

  // The stand-in AdminController clears those keys on any other admin URL, as core's does.
  const other = controller({ options, staff, contact, loggedInAsClient: true, uri: 'admin/client_activity_tracker/settings' })
  t.strictSame(other.session, {}, 'any other admin URL ends it (core\'s AdminController)')
  t.equal(controller({ options, staff, uri: 'admin/client_activity_tracker/token' }).status, 404, 'the old URL is gone')

  const denied = controller({ options, staff: { id: 3 }, uri: tokenUrl })
  t.equal(denied.status, 403, 'staff without the view permission get no token')
  const unconfigured = controller({ options: { cat_server_url: options.cat_server_url }, staff, uri: tokenUrl })
  t.equal(unconfigured.status, 503, 'no secret: 503')
  t.ok(unconfigured.headers.includes('Cache-Control: no-store'))
})

t.test('Client Portal Builder pages: the head hook and cat_consent_snippet() embed the snippet, once per page', async (t) => {
  const app = await buildTestApp(t, { env: PHP_BLOCKS })
  const options = { cat_server_url: 'https://presence.example.com', cat_secret: SECRET }
  const contact = { id: '42', clientId: '7', name: 'Zoë Müller', company: 'Société Générale' }
  const tag = /^<script src="https:\/\/presence\.example\.com\/clients\/cat_consent_js" data-token="[A-Za-z0-9_\-.]+" defer><\/script>$/

  const head = render({ hook: 'head', options, contact })
  t.match(head, tag, 'app_customers_head, which pages with their own layout still print, embeds it')
  t.equal(await consent(app, attribute(head, 'data-token') ?? ''), 204, 'with a token the server takes')

  const page = render({ hook: 'page', options, contact })
  t.equal(page.match(/<script /g)?.length, 1, 'a theme page, with both hooks, gets it once')
  t.match(page, /^<script [^\n]+\n<!-- body -->$/, 'in the head')

  const helper = render({ hook: 'helper', options, contact })
  t.equal(helper.match(/<script /g)?.length, 1, 'cat_consent_snippet() gives it once, then \'\', and the footer hook adds nothing')
  t.match(helper, tag)
  t.equal(render({ hook: 'helper', options, contact: null }), '', 'nothing for a visitor')
  t.equal(render({ hook: 'head', options, contact, loggedInAsClient: true }), '', 'nothing for staff using "Login as client"')
})

t.test('the secrets are stored encrypted with Perfex\'s encryption library, read back decrypted, and 2.0.0\'s plain ones are encrypted on upgrade', async (t) => {
  const next = 'next-secret-0123456789abcdef'
  const webhookSecret = 'webhook-secret-0123456789'
  const app = await buildTestApp(t, { env: { ...PHP_BLOCKS, CAT_SECRET: next } })
  const staff = { id: 1, admin: true }

  const saved = controller({ staff, uri: 'admin/client_activity_tracker/settings', post: { cat_server_url: 'https://presence.example.com', cat_secret: next, cat_webhook_secret: webhookSecret } })
  t.equal(saved.redirect, 'https://crm.example.com/admin/client_activity_tracker/settings')
  t.strictSame(saved.alerts, [['success', 'Settings saved.']])
  const stored = saved.options
  for (const [option, plain] of [['cat_secret', next], ['cat_webhook_secret', webhookSecret]] as const) {
    t.ok((stored[option] ?? '').length > 128, `${option} is stored as CI_Encryption ciphertext`)
    t.notMatch(stored[option] ?? '', plain, `${option} is not stored in plain text`)
  }
  t.strictSame(JSON.parse(render({ hook: 'secrets', rawOptions: stored })), { cat_secret: next, cat_webhook_secret: webhookSecret, source: 'option' }, 'the module reads them back')
  const token = widgetToken({ rawOptions: stored, staff })
  t.equal((await online(app, token)).status, 200, 'and signs with the decrypted secret')

  const plain = php([RENDER, JSON.stringify({ hook: 'secrets', rawOptions: { cat_secret: next, cat_webhook_secret: webhookSecret } })])
  t.strictSame(JSON.parse(plain.stdout), { cat_secret: '', cat_webhook_secret: '', source: '' }, 'a value that does not decrypt is not used as a secret')
  t.match(plain.stderr, /cat_secret does not decrypt/, 'it is logged')

  const short = controller({ staff, rawOptions: stored, uri: 'admin/client_activity_tracker/settings', post: { cat_webhook_secret: 'short' } })
  t.strictSame(short.alerts, [['danger', 'The secret must be at least 16 characters long.']])
  t.equal(short.options.cat_webhook_secret, stored.cat_webhook_secret, 'a short secret is not stored')
  const cleared = controller({ staff, rawOptions: stored, uri: 'admin/client_activity_tracker/settings', post: { cat_webhook_secret_clear: '1' } })
  t.equal(cleared.options.cat_webhook_secret, '', 'the clear box empties it')
  t.equal(cleared.options.cat_secret, stored.cat_secret, 'and leaves the other')

  // An install upgraded from 2.0.0, which stored both in plain text.
  const legacy = { cat_server_url: 'https://presence.example.com', cat_secret: next, cat_webhook_secret: webhookSecret, cat_webhook_notified: '{}' }
  for (const hook of ['migrate', 'install'] as const) {
    const after = JSON.parse(render({ hook, rawOptions: legacy })) as Record<string, string>
    t.notMatch(after.cat_secret ?? '', next, `${hook}: the plain secret is encrypted`)
    t.strictSame(JSON.parse(render({ hook: 'secrets', rawOptions: after })), { cat_secret: next, cat_webhook_secret: webhookSecret, source: 'option' }, `${hook}: and reads back as it was`)
    t.equal(after.cat_server_url, legacy.cat_server_url, `${hook}: other options are kept`)
  }
  const twice = JSON.parse(render({ hook: 'install', rawOptions: stored })) as Record<string, string>
  t.equal(twice.cat_secret, stored.cat_secret, 're-activating leaves an encrypted secret as it is')
})

t.test('uninstalling removes the module\'s options, through uninstall.php as Perfex 3.1.6 runs it and through the uninstall hook', async (t) => {
  const options = { cat_server_url: 'https://presence.example.com', cat_secret: SECRET, cat_webhook_secret: 'webhook-secret-0123456789' }
  const installed = JSON.parse(render({ hook: 'install', options, rawOptions: { companyname: 'Acme' } })) as Record<string, string>
  t.strictSame(Object.keys(installed).sort(), ['cat_secret', 'cat_server_url', 'cat_webhook_notified', 'cat_webhook_secret', 'companyname'], 'activation adds the module\'s four options')
  t.strictSame(JSON.parse(render({ hook: 'uninstall', options, rawOptions: { companyname: 'Acme' } })), { companyname: 'Acme' }, 'App_modules::uninstall() includes uninstall.php: every module option is gone, others stay')
  t.strictSame(JSON.parse(render({ hook: 'uninstall_hook', options, rawOptions: { companyname: 'Acme' } })), { companyname: 'Acme' }, 'the registered uninstall hook does the same')
})
