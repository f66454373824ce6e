import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { ConfigError } from '../config/config.js'

/** The strings of one language as the snippet receives them: the file's keys, plus these two. */
export type SnippetStrings = Record<string, string> & { version: string; locale: string }

export interface SnippetAsset {
  locale: string
  version: string
  body: Buffer
  gzip: Buffer
  etag: string
}

export interface SnippetAssets {
  readonly locales: readonly string[]
  get(locale: string): SnippetAsset
  /** `?lang=` first, then Accept-Language, then English. */
  pick(lang: string | undefined, acceptLanguage: string | undefined): string
}

const LANG_FILE = /^([a-z]{2,3})\.json$/

/**
 * The served script: the bundled code (client-snippet/dist/snippet.js), given its strings in a
 * function scope, so the page gets no global but what the code itself sets (window.CAT).
 */
export function composeSnippet(code: string, strings: SnippetStrings): string {
  return `(function(){var __CAT_L=${JSON.stringify(strings)};${code}})();`
}

/**
 * The consent text's version: a hash of every string the banner can show, so changing the
 * wording (an override file, a new release) asks every contact again.
 */
export function consentVersion(strings: Record<string, string>): string {
  const shown = Object.keys(strings)
    .filter((key) => key !== 'version' && key !== 'locale')
    .sort()
    .map((key) => `${key}=${strings[key]}`)
    .join('\n')
  return createHash('sha256').update(shown).digest('hex').slice(0, 16)
}

function readLangFile(file: string, label: string): Record<string, string> {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`${label}: ${file} is not valid JSON (${(error as Error).message})`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${label}: ${file} must hold one JSON object of strings`)
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${label}: ${file}: "${key}" must be a non-empty string`)
  }
  return parsed as Record<string, string>
}

function readLangDir(dir: string, label: string): Map<string, Record<string, string>> {
  const files = new Map<string, Record<string, string>>()
  for (const name of readdirSync(dir).sort()) {
    const match = LANG_FILE.exec(name)
    if (match === null) continue
    files.set(match[1] as string, readLangFile(join(dir, name), label))
  }
  return files
}

export interface LoadSnippetOptions {
  /** The project root: client-snippet/lang and client-snippet/dist live under it. */
  root: string
  /** CAT_LANG_DIR: files named `xx.json` whose strings replace or add to the built-in ones. */
  overrideDir?: string | undefined
}

/** Reads the languages and the bundled code once, at start; a broken file stops the start. */
export function loadSnippetAssets({ root, overrideDir }: LoadSnippetOptions): SnippetAssets {
  const codeFile = join(root, 'client-snippet', 'dist', 'snippet.js')
  if (!existsSync(codeFile)) throw new ConfigError(`client-snippet/dist/snippet.js is missing: run npm run build`)
  const code = readFileSync(codeFile, 'utf8').trim().replace(/;$/, '')
  const builtIn = readLangDir(join(root, 'client-snippet', 'lang'), 'client-snippet/lang')
  const english = builtIn.get('en')
  if (english === undefined) throw new ConfigError('client-snippet/lang/en.json is missing')
  const overrides = overrideDir === undefined ? new Map<string, Record<string, string>>() : readLangDirChecked(overrideDir)
  for (const [locale, strings] of overrides) {
    for (const key of Object.keys(strings)) {
      if (!(key in english)) throw new ConfigError(`CAT_LANG_DIR: ${join(overrideDir as string, `${locale}.json`)}: unknown key "${key}" (known: ${Object.keys(english).join(', ')})`)
    }
  }

  const assets = new Map<string, SnippetAsset>()
  for (const locale of new Set([...builtIn.keys(), ...overrides.keys()])) {
    // A key missing in a language falls back to English.
    const merged: Record<string, string> = { ...english, ...builtIn.get(locale), ...overrides.get(locale) }
    const version = consentVersion(merged)
    const body = Buffer.from(composeSnippet(code, { ...merged, version, locale }))
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22)
    assets.set(locale, { locale, version, body, gzip: gzipSync(body, { level: 9 }), etag: `"${hash}"` })
  }
  const locales = [...assets.keys()].sort()

  return {
    locales,
    get(locale) {
      return (assets.get(locale) ?? assets.get('en')) as SnippetAsset
    },
    pick(lang, acceptLanguage) {
      const primary = (tag: string): string => tag.trim().split(/[-_]/)[0]?.toLowerCase() ?? ''
      if (lang !== undefined && assets.has(primary(lang))) return primary(lang)
      if (acceptLanguage !== undefined) {
        const ranked = acceptLanguage
          .split(',')
          .map((part, index) => {
            const [tag = '', ...params] = part.split(';')
            const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined)
            return { tag: primary(tag), q: q === undefined ? 1 : Number(q), index }
          })
          .filter((entry) => entry.q > 0 && assets.has(entry.tag))
          .sort((a, b) => b.q - a.q || a.index - b.index)
        if (ranked[0] !== undefined) return ranked[0].tag
      }
      return 'en'
    },
  }
}

function readLangDirChecked(dir: string): Map<string, Record<string, string>> {
  if (!existsSync(dir)) throw new ConfigError(`CAT_LANG_DIR: ${dir} does not exist`)
  return readLangDir(dir, 'CAT_LANG_DIR')
}
