/**
 * The format of what the scripts store, read in TypeScript: contact records and tab members.
 * lua/records.lua and lua/common.lua write the same format; a change to one is a change to both.
 */
import type { Presence } from '../presence-engine.js'

/**
 * Tab members: `contactId|sid` for a visible tab, `contactId|sid|h` for a hidden one, so a stray
 * `beat` from a hidden tab misses the fast path and takes the full script. sids never contain
 * `|` (route schema); a contact id may, so members are split from the right.
 */
const TAB_SEPARATOR = '|'
const HIDDEN_SUFFIX = `${TAB_SEPARATOR}h`

/** A tab's member in its bucket (tab_member in lua/common.lua). */
export function tabMember(contactId: string, sid: string, hidden: boolean): string {
  const member = contactId + TAB_SEPARATOR + sid
  return hidden ? member + HIDDEN_SUFFIX : member
}

export interface TabTimeouts {
  presenceTimeoutMs: number
  idleTimeoutMs: number
}

/**
 * Adds to `lastSeen` each contact's last heartbeat, from a bucket's `ZRANGE … WITHSCORES` reply
 * (member, score, …): the latest tab's expiry minus the timeout of its kind.
 */
export function addLastSeen(lastSeen: Map<string, number>, tabs: readonly string[], timeouts: TabTimeouts): void {
  for (let i = 0; i < tabs.length; i += 2) {
    const member = tabs[i] as string
    let end = member.length
    const hidden = member.endsWith(HIDDEN_SUFFIX)
    if (hidden) end -= HIDDEN_SUFFIX.length
    const contactId = member.slice(0, member.lastIndexOf(TAB_SEPARATOR, end - 1))
    const seen = Number(tabs[i + 1]) - (hidden ? timeouts.idleTimeoutMs : timeouts.presenceTimeoutMs)
    const before = lastSeen.get(contactId)
    if (before === undefined || seen > before) lastSeen.set(contactId, seen)
  }
}

const US = '\x1f'
const RS = '\x1e'

/** Undoes the escape of lua/records.lua: RS "0" is RS, RS "1" is US. */
export function unescapeField(text: string): string {
  let at = text.indexOf(RS)
  if (at === -1) return text
  let out = ''
  let from = 0
  for (; at !== -1; at = text.indexOf(RS, from)) {
    out += text.slice(from, at) + (text[at + 1] === '1' ? US : RS)
    from = at + 2
  }
  return out + text.slice(from)
}

/** The code of "0", the flag of a visible tab in a record's tab list. */
const VISIBLE_FLAG = 48

/**
 * The presence of a contact from its record in the records hash (format: lua/records.lua);
 * lastSeen, which the record does not hold, from its tabs' scores (the record's since when unknown).
 */
export function recordPresence(contactId: string, raw: string, lastSeen: number | undefined): Presence {
  // Seven fields, six separators (no value holds a bare US). indexOf and slice, not split: a
  // snapshot decodes 100 000 of these.
  const a = raw.indexOf(US)
  const b = raw.indexOf(US, a + 1)
  const c = raw.indexOf(US, b + 1)
  const d = raw.indexOf(US, c + 1)
  const e = raw.indexOf(US, d + 1)
  const f = raw.indexOf(US, e + 1)
  if (a === -1 || b === -1 || c === -1 || d === -1 || e === -1 || f === -1 || raw.includes(US, f + 1)) {
    throw new Error(`not a presence record: ${JSON.stringify(raw.slice(0, 80))}`)
  }
  // Tabs: "0sid" (visible) or "1sid" (hidden), joined by spaces.
  let tabs = 1
  let active = raw.charCodeAt(f + 1) === VISIBLE_FLAG
  for (let at = raw.indexOf(' ', f + 1); at !== -1; at = raw.indexOf(' ', at + 1)) {
    tabs += 1
    if (raw.charCodeAt(at + 1) === VISIBLE_FLAG) active = true
  }
  const since = Number(raw.slice(e + 1, f))
  return {
    contactId,
    clientId: unescapeField(raw.slice(0, a)),
    name: unescapeField(raw.slice(a + 1, b)),
    company: unescapeField(raw.slice(b + 1, c)),
    path: unescapeField(raw.slice(c + 1, d)),
    title: unescapeField(raw.slice(d + 1, e)),
    state: active ? 'active' : 'idle',
    since,
    lastSeen: lastSeen ?? since,
    tabs,
  }
}
