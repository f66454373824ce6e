import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../config/config.js'
import { findProjectRoot } from '../activity/database.js'
import { createStaticAsset, sendJavaScriptAsset, type StaticAsset } from './static-asset.js'
import { WIDGET_HEADERS, pageHeaders, securityHeadersPlugin } from '../plugins/security-headers.js'
import { javaScriptAssetResponses, text } from './openapi.js'
import { assertLicensed } from '../license/license-gate.js'

/** The bundled <cat-online-clients> (dashboard/build.mjs), read once at start. */
export function loadDashboardWidget(root: string = findProjectRoot()): StaticAsset {
  const file = join(root, 'dashboard', 'dist', 'widget.js')
  if (!existsSync(file)) throw new ConfigError('dashboard/dist/widget.js is missing: run npm run build')
  return createStaticAsset(readFileSync(file))
}

/**
 * The only script of the page: it reads the admin token from the URL fragment (never sent to the
 * server, so it stays out of server and proxy logs), and gives it to the widget as its tokenProvider.
 * `&panel=settings` in the fragment opens the settings panel (admin tokens).
 */
const PAGE_SCRIPT = `(function () {
  function param(name) {
    var m = new RegExp('(?:^#|&)' + name + '=([^&]*)').exec(location.hash)
    try { return m ? decodeURIComponent(m[1]) : '' } catch (e) { return '' }
  }
  function token() { return param('token') }
  var hint = document.getElementById('no-token')
  var el = document.createElement('cat-online-clients')
  // The page's own few words are English (its lang); the dashboard speaks the browser's language.
  if (navigator.language) el.setAttribute('lang', navigator.language)
  el.tokenProvider = function () { return token() || null }
  function panel() {
    if (param('panel')) el.setAttribute('panel', param('panel'))
    else el.removeAttribute('panel')
  }
  panel()
  hint.hidden = token() !== ''
  window.addEventListener('hashchange', function () {
    hint.hidden = token() !== ''
    panel()
    if (el.reconnect) el.reconnect()
  })
  document.querySelector('main').appendChild(el)
})()`

/** No token in it and nothing from a CDN: the widget comes from this server, the token from the fragment. */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Online clients · Client Activity Tracker</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>
html,body{margin:0;background:#f3f5f9;color:#1d2433;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;padding:20px 24px 32px}
h1{font-size:18px;font-weight:600;margin:0 0 14px}
h1 span{color:#5b6478;font-weight:400}
#no-token{background:#fff;border:1px solid #e3e6ec;border-left:4px solid #b91c1c;border-radius:8px;padding:12px 16px;margin:0 0 14px}
#no-token[hidden]{display:none}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f6;padding:1px 4px;border-radius:4px}
cat-online-clients{--cat-max-height:calc(100vh - 210px)}
</style>
<script src="/admin/dashboard.js"></script>
</head><body><main>
<h1>Client Activity Tracker <span>· admin dashboard</span></h1>
<p id="no-token" hidden>No admin token in this link. Open the dashboard with the link the server prints at start (<code>/admin#token=…</code>), or mint a token with <code>npx cat-presence token --aud admin --sub ID</code> and append it as <code>#token=…</code>.</p>
<noscript><p>This dashboard needs JavaScript.</p></noscript>
</main>
<script>${PAGE_SCRIPT}</script>
</body></html>
`

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const widget = loadDashboardWidget()
  await app.register(securityHeadersPlugin)

  const { license } = app
  // The embeddable widget is part of the licensed staff side: 402 outside active and grace.
  app.get('/admin/widget.js', {
    helmet: WIDGET_HEADERS,
    schema: { summary: 'The <cat-online-clients> custom element', description: 'With licensing on and the licence neither active nor in grace: 402 license_required.', tags: ['dashboard'] },
    config: { docs: { errors: ['license_required'], responses: javaScriptAssetResponses } },
  }, async (request, reply) => {
    assertLicensed(license)
    return sendJavaScriptAsset(request, reply, widget)
  })

  // The dashboard page's own copy of the widget, served in every licence state: the page is
  // where the licence is shown and a key entered, so it must load when the widget may not.
  app.get('/admin/dashboard.js', {
    helmet: WIDGET_HEADERS,
    schema: { summary: "The dashboard page's script (the widget, served in every licence state)", tags: ['dashboard'] },
    config: { docs: { responses: javaScriptAssetResponses } },
  }, async (request, reply) => sendJavaScriptAsset(request, reply, widget))

  // The token is in the fragment, never sent; no-referrer keeps the page's URL to itself anyway.
  app.get('/admin', {
    helmet: pageHeaders([PAGE_SCRIPT]),
    schema: {
      summary: 'The admin dashboard page',
      description: 'Open it as /admin#token=ADMIN_JWT (add &panel=settings to open the settings): the token stays in the fragment, never sent to the server.',
      tags: ['dashboard'],
    },
    config: { docs: { responses: { 200: text('The dashboard page.', 'text/html') } } },
  }, async (_request, reply) => {
    void reply.headers({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' })
    return PAGE
  })
}
