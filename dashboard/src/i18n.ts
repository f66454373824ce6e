/**
 * The widget's strings (every language of dashboard/lang, bundled) and its Intl formatters.
 * The language: the element's `lang`, else the page's `<html lang>`, else the browser's, else English.
 */
import en from '../lang/en.json'
import de from '../lang/de.json'
import fr from '../lang/fr.json'
import es from '../lang/es.json'
import it from '../lang/it.json'
import pt from '../lang/pt.json'
import nl from '../lang/nl.json'
import pl from '../lang/pl.json'

export type StringKey = keyof typeof en
export type Strings = { readonly [K in StringKey]: string }

// `satisfies`: a language file missing a key of en.json fails to compile.
const LANGS = { en, de, fr, es, it, pt, nl, pl } satisfies Record<string, Strings>
export type Lang = keyof typeof LANGS

/** The first supported language among the candidates (BCP 47 tags; the primary subtag counts). */
export function pickLang(...candidates: (string | null | undefined)[]): { lang: Lang; locale: string } {
  for (const tag of candidates) {
    if (!tag) continue
    const primary = tag.trim().split(/[-_]/)[0]?.toLowerCase() ?? ''
    if (primary in LANGS) return { lang: primary as Lang, locale: tag.trim().replace(/_/g, '-') }
  }
  return { lang: 'en', locale: 'en' }
}

export interface I18n {
  readonly lang: Lang
  /** The string, with `{name}` placeholders filled in. */
  t(key: StringKey, values?: Record<string, string | number>): string
  count(n: number): string
  /** A duration, e.g. "1h 5m" / "5m 12s" / "12s" in the locale's narrow units. */
  duration(ms: number): string
  /** How long ago, e.g. "now", "12 sec. ago", "3 min. ago". */
  ago(ms: number): string
  dateTime(ms: number): string
  time(ms: number): string
}

export function createI18n(lang: Lang, locale: string): I18n {
  const strings: Strings = LANGS[lang]
  // A locale tag the browser does not know falls back to the language alone.
  let loc = locale
  try {
    new Intl.NumberFormat(loc)
  } catch {
    loc = lang
  }
  const number = new Intl.NumberFormat(loc)
  const unit = (u: string): Intl.NumberFormat => new Intl.NumberFormat(loc, { style: 'unit', unit: u, unitDisplay: 'narrow' })
  const hours = unit('hour')
  const minutes = unit('minute')
  const seconds = unit('second')
  const relative = new Intl.RelativeTimeFormat(loc, { numeric: 'auto', style: 'short' })
  const dateTime = new Intl.DateTimeFormat(loc, { dateStyle: 'medium', timeStyle: 'short' })
  const time = new Intl.DateTimeFormat(loc, { timeStyle: 'medium' })

  return {
    lang,
    t(key, values) {
      const text = strings[key]
      if (!values) return text
      return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole))
    },
    count: (n) => number.format(n),
    duration(ms) {
      const total = Math.max(0, Math.floor(ms / 1000))
      const h = Math.floor(total / 3600)
      const m = Math.floor((total % 3600) / 60)
      const s = total % 60
      if (h > 0) return `${hours.format(h)} ${minutes.format(m)}`
      if (m > 0) return `${minutes.format(m)} ${seconds.format(s)}`
      return seconds.format(s)
    },
    ago(ms) {
      const s = Math.max(0, Math.round(ms / 1000))
      if (s < 5) return relative.format(0, 'second')
      if (s < 60) return relative.format(-s, 'second')
      if (s < 3600) return relative.format(-Math.floor(s / 60), 'minute')
      if (s < 86400) return relative.format(-Math.floor(s / 3600), 'hour')
      return relative.format(-Math.floor(s / 86400), 'day')
    },
    dateTime: (ms) => dateTime.format(ms),
    time: (ms) => time.format(ms),
  }
}
