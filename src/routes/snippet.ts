import type { FastifyInstance } from 'fastify'
import { pageHeaders, securityHeadersPlugin } from '../plugins/security-headers.js'
import { Type } from '@sinclair/typebox'
import { signToken } from '../auth/tokens.js'
import { sendJavaScriptAsset } from './static-asset.js'
import { javaScriptAssetResponses, text } from './openapi.js'
import type { Config } from '../config/config.js'

/** True for a HOST only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || /^::ffff:127\./.test(bare)
}

/**
 * /demo mints a real client token for whoever asks: outside demo mode it is served only outside
 * production and only when the server listens on a loopback address (the `npm start` default),
 * so an instance bound to a public address hands out no tokens. In demo mode (CAT_DEMO_MODE) it
 * is served wherever the server runs, production and public addresses included: handing out
 * tokens to visitors is what a public demo install is for, and its staff side is read-only.
 */
export function servesDemo(config: Pick<Config, 'production' | 'host' | 'demoMode'>): boolean {
  return config.demoMode || (!config.production && isLoopbackHost(config.host))
}

/** How long the dashboard link of the /demo page (demo mode) works. */
export const DEMO_DASHBOARD_TTL_S = 3600

/** The demo portal's own script: a page change without a reload, as a single-page portal makes. */
const DEMO_SCRIPT = `
document.querySelector('nav').addEventListener('click', function (e) {
  var a = e.target.closest('a'); if (!a) return; e.preventDefault()
  history.pushState({}, '', a.getAttribute('href'))
  document.title = a.textContent + ' · Demo portal'
  document.getElementById('page').textContent = a.textContent
})
`

export async function snippetRoutes(app: FastifyInstance): Promise<void> {
  const { snippet } = app

  app.get<{ Querystring: { lang?: string } }>('/clients/cat_consent_js', {
    schema: {
      summary: 'The client snippet: consent banner and heartbeats',
      description: 'The language comes from `lang`, else Accept-Language, else English.',
      tags: ['portal'],
      querystring: Type.Object({ lang: Type.Optional(Type.String({ maxLength: 35, description: 'a language tag, e.g. de or pt-BR' })) }),
    },
    config: { docs: { errors: ['invalid_request'], responses: javaScriptAssetResponses } },
  }, async (request, reply) => {
    const asset = snippet.get(snippet.pick(request.query.lang, request.headers['accept-language']))
    return sendJavaScriptAsset(request, reply, asset, { Vary: 'Accept-Language, Accept-Encoding', 'Content-Language': asset.locale })
  })

  if (!servesDemo(app.config)) return
  await app.register(demoRoute)
}

/** Its own context: the security headers' hooks run on this page only. */
async function demoRoute(app: FastifyInstance): Promise<void> {
  await app.register(securityHeadersPlugin)
  // A portal page with a freshly minted client token, to see the flow.
  app.get('/demo', {
    helmet: pageHeaders([DEMO_SCRIPT]),
    schema: {
      summary: 'A demo portal page with a freshly minted client token',
      description: 'Served only outside production and only when HOST is a loopback address, or in demo mode (CAT_DEMO_MODE) wherever the server runs; in demo mode the page also links to the dashboard with a freshly minted staff token valid for an hour.',
      tags: ['portal'],
    },
    config: { docs: { responses: { 200: text('The demo page.', 'text/html') } } },
  }, async (_request, reply) => {
    const id = `demo-${Math.random().toString(36).slice(2, 8)}`
    const token = signToken({ aud: 'client', sub: id, clientId: 'demo-client', name: `Demo contact ${id.slice(5)}`, company: 'Demo Company', ttlS: 12 * 3600 }, app.config.secrets, app.now())
    // In demo mode the visitor may watch too: the staff side only reads there, and the token's
    // role is staff, which may not change anything even where demo mode would allow it.
    const dashboard = app.config.demoMode
      ? `<p>This server runs in demo mode: <a href="/admin#token=${signToken({ aud: 'admin', sub: `demo-visitor-${id.slice(5)}`, name: 'Demo visitor', role: 'staff', ttlS: DEMO_DASHBOARD_TTL_S }, app.config.secrets, app.now())}" target="_blank">open the admin dashboard</a> (read-only; the link works for an hour).</p>\n`
      : ''
    void reply.header('Content-Type', 'text/html; charset=utf-8').header('Cache-Control', 'no-store')
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo portal · Client Activity Tracker</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}nav a{margin-right:1rem}</style>
</head><body><main>
<h1 id="title">Demo customer portal</h1>
<p>You are <strong>${id}</strong> of Demo Company. Accept the banner, then open the admin dashboard in another window and watch yourself appear.</p>
${dashboard}<nav><a href="/demo#tickets" data-path="/clients/tickets">Tickets</a><a href="/demo#invoices" data-path="/clients/invoices">Invoices</a><a href="/demo#projects" data-path="/clients/projects">Projects</a></nav>
<p id="page">Home</p>
<p>Activity tracking: <span data-cat-control></span></p>
</main>
<script>${DEMO_SCRIPT}</script>
<script src="/clients/cat_consent_js" data-token="${token}" defer></script>
</body></html>`
  })
}
