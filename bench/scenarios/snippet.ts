/**
 * The served snippet: bytes on the wire, gzipped, for each language, as a portal's browser
 * gets it from GET /clients/cat_consent_js.
 */
import { request } from 'undici'
import { findProjectRoot } from '../../src/activity/database.js'
import { loadSnippetAssets } from '../../src/snippet/snippet-assets.js'
import { startServer } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

const LIMIT = 3072

export async function snippetScenario(_options: RunOptions): Promise<ScenarioResult> {
  const server = await startServer({ kind: 'memory', site: `bench-snippet-${process.pid}` })
  try {
    const sizes: Record<string, number> = {}
    for (const locale of loadSnippetAssets({ root: findProjectRoot() }).locales) {
      const res = await request(`http://127.0.0.1:${server.port}/clients/cat_consent_js?lang=${locale}`, { headers: { 'accept-encoding': 'gzip' } })
      const body = Buffer.from(await res.body.arrayBuffer())
      if (res.statusCode !== 200 || res.headers['content-encoding'] !== 'gzip') throw new Error(`snippet ${locale}: ${res.statusCode} ${String(res.headers['content-encoding'])}`)
      sizes[locale] = body.length
    }
    const [largest, bytes] = Object.entries(sizes).sort((a, b) => b[1] - a[1])[0] as [string, number]
    return {
      name: 'snippet',
      rows: [{ scenario: 'snippet', measure: `served snippet, gzipped, largest of ${Object.keys(sizes).length} languages (${largest})`, value: `${bytes} B`, target: `≤ ${LIMIT} B`, pass: bytes <= LIMIT }],
      data: { sizes },
    }
  } finally {
    await server.stop()
  }
}
