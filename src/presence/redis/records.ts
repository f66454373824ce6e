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

const PIPE = 0x7c
const LETTER_H = 0x68
const ZERO = 0x30
const NINE = 0x39
/** What joins a bucket's members and scores in lua/snapshot.lua's reply: in no UTF-8 text. */
const JOIN = 0xff

/** A tab's score (its expiry, ms) from bytes[from, to) of a `ZRANGE … WITHSCORES` reply. */
function scoreOf(bytes: Buffer, from: number, to: number): number {
  let value = 0
  for (let i = from; i < to; i += 1) {
    const code = bytes[i] as number
    if (code < ZERO || code > NINE || i - from >= 15) return Number(bytes.toString('latin1', from, to))
    value = value * 10 + code - ZERO
  }
  return to === from ? Number.NaN : value
}

/** The index of the next JOIN in bytes from `from`, or the end. */
function joinAt(bytes: Buffer, from: number): number {
  let i = from
  while (i < bytes.length && bytes[i] !== JOIN) i += 1
  return i
}

/**
 * The contacts of one bucket, from its member/score pairs as lua/snapshot.lua joins them
 * (member 0xFF score 0xFF member …): each contact once, appended to `ids`, with its last
 * heartbeat appended to `lastSeen` (the latest tab's expiry minus the timeout of its kind). A
 * contact's tabs are all in its bucket, so the bucket alone tells one contact's tabs from
 * another's.
 */
export function bucketContacts(tabs: Buffer, timeouts: TabTimeouts, ids: string[], lastSeen: number[]): void {
  if (tabs.length === 0) return
  // Most contacts have one tab: the map is of this bucket's contacts only, a few dozen.
  const at = new Map<string, number>()
  for (let from = 0; from < tabs.length; ) {
    const memberEnd = joinAt(tabs, from)
    if (memberEnd >= tabs.length) throw new Error(`a bucket's tabs end in a member: ${JSON.stringify(tabs.toString('utf8', from, from + 80))}`)
    const scoreEnd = joinAt(tabs, memberEnd + 1)
    let end = memberEnd
    const hidden = end - from >= 2 && tabs[end - 1] === LETTER_H && tabs[end - 2] === PIPE
    if (hidden) end -= 2
    // The sid is the part after the last `|` (sids have none; contact ids may).
    let cut = end - 1
    while (cut >= from && tabs[cut] !== PIPE) cut -= 1
    const contactId = tabs.toString('utf8', from, Math.max(from, cut))
    const seen = scoreOf(tabs, memberEnd + 1, scoreEnd) - (hidden ? timeouts.idleTimeoutMs : timeouts.presenceTimeoutMs)
    from = scoreEnd + 1
    const k = at.get(contactId)
    if (k === undefined) {
      at.set(contactId, ids.length)
      ids.push(contactId)
      lastSeen.push(seen)
    } else if (seen > (lastSeen[k] as number)) lastSeen[k] = seen
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
