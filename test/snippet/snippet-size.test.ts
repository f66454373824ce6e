import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { composeSnippet, consentVersion, loadSnippetAssets } from '../../src/snippet/snippet-assets.js'
import { findProjectRoot } from '../../src/activity/database.js'
import { CAT_STRING_KEYS } from '../../client-snippet/src/strings.js'

/** Issue 4 §8: the served script of one language is at most this many bytes gzipped. */
const LIMIT = 3072

const root = findProjectRoot()
const langDir = join(root, 'client-snippet', 'lang')
// The measured bundle is the current source's (the build replaces the file atomically).
execFileSync(process.execPath, [join(root, 'client-snippet', 'build.mjs')], { stdio: 'inherit' })
const code = readFileSync(join(root, 'client-snippet', 'dist', 'snippet.js'), 'utf8')

const readLang = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(langDir, name), 'utf8')) as Record<string, unknown>
const files = readdirSync(langDir).filter((name) => name.endsWith('.json')).sort()
const english = readLang('en.json')
const keys = Object.keys(english).sort()

t.test('the bundle keeps __CAT_L as a free identifier and defines no global but window.CAT', async (t) => {
  t.match(code, /\b__CAT_L\b/)
  t.notMatch(code, /\bvar __CAT_L\b/, 'the bundle does not declare the strings itself')
  t.match(code, /^\(\(\)=>\{/, 'one IIFE')
  t.notMatch(code, /sourceMappingURL/)
})

t.test('en.json has exactly the keys the snippet reads (CatStringKey)', async (t) => {
  t.same(keys, [...CAT_STRING_KEYS].sort())
})

t.test('the eight languages the snippet ships are there', async (t) => {
  for (const locale of ['en', 'de', 'fr', 'es', 'it', 'pt', 'nl', 'pl']) t.ok(files.includes(`${locale}.json`), locale)
})

for (const name of files) {
  const locale = name.replace(/\.json$/, '')
  t.test(`${locale}: exactly the keys of en.json, all non-empty strings`, async (t) => {
    const strings = readLang(name)
    t.same(Object.keys(strings).sort(), keys)
    for (const [key, value] of Object.entries(strings)) t.ok(typeof value === 'string' && value.trim() !== '', `${locale}.${key} is a non-empty string`)
  })

  t.test(`${locale}: the served script is at most ${LIMIT} bytes gzipped`, async (t) => {
    const strings = readLang(name) as Record<string, string>
    const version = consentVersion(strings)
    t.equal(version.length, 16)
    const served = composeSnippet(code, { ...strings, version, locale })
    const size = gzipSync(served, { level: 9 }).length
    t.comment(`${locale}: ${Buffer.byteLength(served)} bytes, ${size} bytes gzipped (limit ${LIMIT})`)
    t.ok(size <= LIMIT, `${locale}: ${size} <= ${LIMIT}`)
  })
}

t.test('what the server actually serves is within the limit too', async (t) => {
  const assets = loadSnippetAssets({ root })
  t.same([...assets.locales].sort(), files.map((name) => name.replace(/\.json$/, '')))
  for (const locale of assets.locales) {
    const asset = assets.get(locale)
    t.ok(asset.gzip.length <= LIMIT, `${locale}: served gzip ${asset.gzip.length} <= ${LIMIT}`)
  }
})
