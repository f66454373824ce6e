/**
 * A snapshot part read from the records hash as bytes: its JSON text is written from the
 * records' bytes (format: lua/records.lua) straight into one buffer, with no string or object
 * per contact. At a million online a snapshot is 230 MB of JSON; made from presences it cost
 * the server a string per field, an object per contact, JSON.stringify and an encoding to
 * UTF-8, most of the server's time in the snapshot. The text is JSON.stringify's of the
 * presences recordPresence makes of the same records, byte for byte (test/presence/record-part.test.ts).
 */
import { isUtf8 } from 'node:buffer'
import type { SnapshotPart } from '../snapshot-parts.js'
import { recordPresence, unescapeField } from './records.js'

const US = 0x1f
const RS = 0x1e
const QUOTE = 0x22
const BACKSLASH = 0x5c
const SPACE = 0x20
const ZERO = 0x30
const NINE = 0x39
const ONE = 0x31
const COMMA = 0x2c

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1')
const OPEN = bytes('{"contactId":"')
const CLIENT = bytes('","clientId":"')
const NAME = bytes('","name":"')
const COMPANY = bytes('","company":"')
const PATH = bytes('","path":"')
const TITLE = bytes('","title":"')
const ACTIVE = bytes('","state":"active","since":')
const IDLE = bytes('","state":"idle","since":')
const LAST_SEEN = bytes(',"lastSeen":')
const TABS = bytes(',"tabs":')
/** The keys that open the text fields of a record, in the record's order. */
const TEXT_KEYS = [CLIENT, NAME, COMPANY, PATH, TITLE]

/** JSON.stringify's escape of each byte below 0x20 and of `"` and `\`; undefined for the bytes it leaves as they are. */
const ESCAPES: (Buffer | undefined)[] = Array.from({ length: 0x80 }, (_, code) => {
  if (code >= 0x20 && code !== QUOTE && code !== BACKSLASH) return undefined
  return bytes(JSON.stringify(String.fromCharCode(code)).slice(1, -1))
})
const ESCAPED_RS = ESCAPES[RS] as Buffer
const ESCAPED_US = ESCAPES[US] as Buffer

/** The most bytes a record of `recordBytes` and an id of `idLength` UTF-16 units take as JSON: 6 per byte or unit (`\u001e`), and the keys. */
const worstCase = (recordBytes: number, idLength: number): number => 6 * (recordBytes + idLength) + 200

/** A growing buffer of JSON text. */
class JsonBytes {
  buffer: Buffer
  at = 0
  /** The bits of every byte field() copied: 0x80 among them when one was not ASCII. */
  bits = 0

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size)
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.at + n <= this.buffer.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + n))
    this.buffer.copy(bigger, 0, 0, this.at)
    this.buffer = bigger
  }

  put(text: Buffer): void {
    const { buffer } = this
    let at = this.at
    for (let i = 0; i < text.length; i += 1) buffer[at++] = text[i] as number
    this.at = at
  }

  byte(value: number): void {
    this.buffer[this.at++] = value
  }

  /** A string's JSON text without its quotes. */
  string(text: string): void {
    const { buffer } = this
    const start = this.at
    let at = start
    for (let i = 0; i < text.length; i += 1) {
      const code = text.charCodeAt(i)
      if (code < SPACE || code === QUOTE || code === BACKSLASH || code >= 0x80) {
        this.at = start + buffer.write(JSON.stringify(text).slice(1, -1), start, 'utf8')
        return
      }
      buffer[at++] = code
    }
    this.at = at
  }

  /** A number as JSON.stringify writes it. */
  number(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      this.at += this.buffer.write(JSON.stringify(value), this.at, 'latin1')
      return
    }
    let digits = 1
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits += 1
    const { buffer } = this
    let rest = value
    for (let at = this.at + digits - 1; at >= this.at; at -= 1) {
      const next = Math.floor(rest / 10)
      buffer[at] = ZERO + rest - next * 10
      rest = next
    }
    this.at += digits
  }

  /**
   * A text field of a record, record[from…] up to its separator, as JSON string content (the
   * record's escapes undone: RS "0" is RS, RS "1" is US). The index of the separator; -1 when
   * the record ends first.
   */
  field(record: Buffer, from: number): number {
    const { buffer } = this
    let at = this.at
    let bits = 0
    let i = from
    for (; i < record.length; i += 1) {
      const code = record[i] as number
      if (code >= SPACE && code !== QUOTE && code !== BACKSLASH) {
        buffer[at++] = code
        bits |= code
        continue
      }
      if (code === US) break
      let escape = ESCAPES[code] as Buffer
      if (code === RS) {
        // As unescapeField: the byte after RS is the escape's. (Were it the field's separator,
        // which no script writes, the fields would come out one short: the record is then
        // written from its presence.)
        escape = record[i + 1] === ONE ? ESCAPED_US : ESCAPED_RS
        i += 1
      }
      for (let k = 0; k < escape.length; k += 1) buffer[at++] = escape[k] as number
    }
    this.at = at
    this.bits |= bits
    return i < record.length ? i : -1
  }
}

/** Whether record[from…to) is an integer as JSON.stringify(Number(…)) writes it back. */
function plainInteger(record: Buffer, from: number, to: number): boolean {
  if (to <= from || to - from > 15 || (record[from] === ZERO && to - from > 1)) return false
  for (let i = from; i < to; i += 1) {
    const code = record[i] as number
    if (code < ZERO || code > NINE) return false
  }
  return true
}

/**
 * One contact's JSON object from its record, or false when the record is not one this writes
 * byte for byte (not UTF-8, a since that is not a plain integer, not a record at all): the
 * caller writes that one from its presence.
 */
function writeRecord(out: JsonBytes, contactId: string, record: Buffer, lastSeen: number | undefined): boolean {
  out.bits = 0
  out.put(OPEN)
  out.string(contactId)
  let from = 0
  for (const key of TEXT_KEYS) {
    out.put(key)
    const end = out.field(record, from)
    if (end === -1) return false
    from = end + 1
  }
  const sinceFrom = from
  const sinceTo = record.indexOf(US, sinceFrom)
  if (sinceTo === -1 || !plainInteger(record, sinceFrom, sinceTo)) return false
  // Tabs: "0sid" (visible) or "1sid" (hidden), joined by spaces; a visible one makes the contact active.
  let tabs = 1
  let active = record[sinceTo + 1] === ZERO
  let high = (out.bits & 0x80) !== 0
  for (let i = sinceTo + 1; i < record.length; i += 1) {
    const code = record[i] as number
    if (code === SPACE) {
      tabs += 1
      if (record[i + 1] === ZERO) active = true
    } else if (code === US) return false
    else if (code >= 0x80) high = true
  }
  out.put(active ? ACTIVE : IDLE)
  for (let i = sinceFrom; i < sinceTo; i += 1) out.byte(record[i] as number)
  out.put(LAST_SEEN)
  if (lastSeen === undefined) for (let i = sinceFrom; i < sinceTo; i += 1) out.byte(record[i] as number)
  else out.number(lastSeen)
  out.put(TABS)
  out.number(tabs)
  out.byte(0x7d)
  // Text fields are copied as they are: right only if the record is UTF-8, as Redis holds what
  // the scripts wrote from the server's strings.
  return !high || isUtf8(record)
}

/**
 * The part of the contacts `contactIds`, whose records (null: gone meanwhile) are `records`
 * and whose last heartbeats are `lastSeen` (undefined: the record's since), in that order.
 */
export function recordPart(contactIds: readonly string[], records: readonly (Buffer | null)[], lastSeen: readonly (number | undefined)[]): SnapshotPart {
  const ids: string[] = []
  const raws: Buffer[] = []
  const seen: (number | undefined)[] = []
  let size = 2
  for (let k = 0; k < contactIds.length; k += 1) {
    const record = records[k]
    if (record == null) continue
    const id = contactIds[k] as string
    ids.push(id)
    raws.push(record)
    seen.push(lastSeen[k])
    size += record.length + id.length + 160
  }
  // Each contact's object: text[starts[k], starts[k + 1] - 1) (the comma between them left out).
  const starts = new Uint32Array(ids.length + 1)
  const out = new JsonBytes(size)
  out.byte(0x5b)
  for (let k = 0; k < ids.length; k += 1) {
    if (k > 0) out.byte(COMMA)
    const id = ids[k] as string
    const record = raws[k] as Buffer
    out.ensure(worstCase(record.length, id.length))
    const start = out.at
    starts[k] = start
    if (!writeRecord(out, id, record, seen[k])) {
      const json = JSON.stringify(recordPresence(id, record.toString('utf8'), seen[k]))
      out.at = start
      out.ensure(Buffer.byteLength(json))
      out.at += out.buffer.write(json, start, 'utf8')
    }
  }
  starts[ids.length] = out.at + 1
  out.byte(0x5d)
  const text = out.buffer.subarray(0, out.at)
  let clientIds: string[] | undefined
  return {
    size: ids.length,
    presences: () => ids.map((id, k) => recordPresence(id, (raws[k] as Buffer).toString('utf8'), seen[k])),
    json(sees) {
      if (ids.length === 0) return undefined
      if (sees === undefined) return text
      clientIds ??= raws.map((record) => {
        const end = record.indexOf(US)
        return unescapeField(record.toString('utf8', 0, end === -1 ? record.length : end))
      })
      const visible: number[] = []
      for (let k = 0; k < ids.length; k += 1) if (sees(clientIds[k] as string)) visible.push(k)
      if (visible.length === 0) return undefined
      if (visible.length === ids.length) return text
      let length = 1
      for (const k of visible) length += (starts[k + 1] as number) - (starts[k] as number)
      const chosen = Buffer.allocUnsafe(length)
      chosen[0] = 0x5b
      let at = 1
      for (const k of visible) {
        at += text.copy(chosen, at, starts[k], (starts[k + 1] as number) - 1)
        chosen[at++] = COMMA
      }
      chosen[at - 1] = 0x5d
      return chosen
    },
  }
}
