import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { adminToken, buildTestApp } from '../helpers/app.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { ConfigError } from '../../src/config/config.js'
import { loadDashboardWidget } from '../../src/routes/dashboard.js'

const root = findProjectRoot()
const bundle = readFileSync(join(root, 'dashboard', 'dist', 'widget.js'))

t.test('GET /admin/widget.js: the bundle, with an ETag, 304 on If-None-Match, gzip when accepted', async (t) => {
  const app = await buildTestApp(t)
  const plain = await app.inject({ url: '/admin/widget.js' })
  t.equal(plain.statusCode, 200)
  t.match(plain.headers['content-type'], /^application\/javascript; charset=utf-8$/)
  t.equal(plain.headers['cache-control'], 'public, max-age=300')
  t.match(plain.headers.vary, /Accept-Encoding/)
  t.equal(plain.headers['x-content-type-options'], 'nosniff')
  t.notOk(plain.headers['content-encoding'], 'not compressed unless asked')
  t.ok(plain.rawPayload.equals(bundle), 'the bytes of dashboard/dist/widget.js')
  t.match(plain.body, /cat-online-clients/)
  const etag = plain.headers.etag as string
  t.match(etag, /^"[A-Za-z0-9_-]{22}"$/)

  const again = await app.inject({ url: '/admin/widget.js', headers: { 'if-none-match': etag } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  const weak = await app.inject({ url: '/admin/widget.js', headers: { 'if-none-match': `"other", W/${etag}` } })
  t.equal(weak.statusCode, 304, 'a weak match in a list counts')
  const stale = await app.inject({ url: '/admin/widget.js', headers: { 'if-none-match': '"other"' } })
  t.equal(stale.statusCode, 200)

  const gz = await app.inject({ url: '/admin/widget.js', headers: { 'accept-encoding': 'br, gzip;q=0.8' } })
  t.equal(gz.statusCode, 200)
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.ok(gunzipSync(gz.rawPayload).equals(bundle), 'gzip of the same bytes')
  const gzEtag = gz.headers.etag as string
  t.not(gzEtag, etag, 'the gzip body has its own ETag')
  t.equal((await app.inject({ url: '/admin/widget.js', headers: { 'accept-encoding': 'gzip', 'if-none-match': gzEtag } })).statusCode, 304)
  t.equal((await app.inject({ url: '/admin/widget.js', headers: { 'if-none-match': gzEtag } })).statusCode, 200, 'the gzip ETag does not validate the plain body')
  t.comment(`widget.js: ${bundle.length} bytes, ${gz.rawPayload.length} gzipped`)
})

t.test('GET /admin: an HTML page without a token, loading /admin/dashboard.js (the widget) from this server and nothing else', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ url: '/admin' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8$/)
  t.match(res.body, /<script src="\/admin\/dashboard\.js"><\/script>/)
  const script = await app.inject({ url: '/admin/dashboard.js' })
  t.equal(script.statusCode, 200)
  t.ok(script.rawPayload.equals(bundle), "the page's script is the widget's bundle")
  t.match(res.body, /location\.hash/, 'the token comes from the fragment')
  t.notMatch(res.body, /eyJ/, 'no JWT in the HTML')
  t.notMatch(res.body, /https?:\/\//, 'no absolute URL: nothing from a CDN')
  const csp = res.headers['content-security-policy'] as string
  t.match(csp, /default-src 'none'/)
  t.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/)
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  // The page is public (the token is in the fragment); asking with a token changes nothing.
  const withToken = await app.inject({ url: `/admin?token=${adminToken()}`, headers: { authorization: `Bearer ${adminToken()}` } })
  t.equal(withToken.body, res.body)
})

t.test('each dashboard language file has exactly the keys of en.json, each a non-empty string', async (t) => {
  const dir = join(root, 'dashboard', 'lang')
  const en = JSON.parse(readFileSync(join(dir, 'en.json'), 'utf8')) as Record<string, string>
  const files = readdirSync(dir).filter((name) => name.endsWith('.json')).sort()
  t.same(files, ['de.json', 'en.json', 'es.json', 'fr.json', 'it.json', 'nl.json', 'pl.json', 'pt.json'], 'the languages of the snippet')
  const snippetLangs = readdirSync(join(root, 'client-snippet', 'lang')).filter((name) => name.endsWith('.json')).sort()
  t.same(files, snippetLangs, 'the same set as client-snippet/lang')
  for (const file of files) {
    const strings = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>
    t.same(Object.keys(strings).sort(), Object.keys(en).sort(), `${file}: en's keys`)
    for (const [key, value] of Object.entries(strings)) {
      if (typeof value !== 'string' || value.trim() === '') t.fail(`${file}: ${key} is not a non-empty string`)
      // Placeholders match English, so no value is left unfilled.
      const placeholders = (text: string): string[] => (text.match(/\{\w+\}/g) ?? []).sort()
      t.same(placeholders(String(value)), placeholders(en[key] ?? ''), `${file}: ${key} has en's placeholders`)
    }
  }
})

t.test('a missing bundle stops the start with one line naming the fix', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'cat-no-widget-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  t.throws(() => loadDashboardWidget(empty), new ConfigError('dashboard/dist/widget.js is missing: run npm run build'))
})
