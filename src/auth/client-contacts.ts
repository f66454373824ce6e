/**
 * What this instance knows of the client contacts it has seen: which tokens it has verified,
 * each contact's claims, and whether the contact is known to have granted consent. Kept in
 * typed arrays rather than one object per token or contact, so that a million contacts cost a
 * couple of hundred bytes each in the heap and give the garbage collector almost nothing to
 * trace: per token a record of fixed size in an open-addressing table; per contact its id, one
 * string of its other claims and a record of its counts.
 *
 * A token's record is its own 32 bytes, and a contact's counts are 16: a heartbeat finds all it
 * needs of either in one cache line. The heartbeat's lookups land anywhere in tables of a
 * million entries, so each line read is a likely miss to main memory, and a field per array
 * (one line per field) cost the fast path more than the rest of its work.
 *
 * A token is placed by the first SIG_CHARS characters of its signature (90 bits of an HMAC that
 * only the portal can make, so the slots spread evenly), and is the one remembered only when
 * those and a hash of its whole text match: a check of every character, so an altered token
 * misses and goes through full verification. A token not used for `keepIdleMs` (a contact
 * gone) or expired is dropped when the table next needs room; a contact is dropped with the
 * last of its tokens.
 */

import type { KnownGrants } from '../consent/consent-service.js'

/** Characters of the signature kept per token (base64url, 6 bits each), five to a 32-bit word. */
const SIG_CHARS = 15
const SIG_WORDS = 3
/**
 * A token's record, in 32-bit words: the contact's index + 1 (0: an empty slot), the hash of
 * the whole text, the signature's words, the time of last use, then the expiry as a float64.
 */
const TOKEN_WORDS = 8
const T_CONTACT = 0
const T_HASH = 1
const T_SIG = 2
const T_LAST_USE = 5
/** The expiry's index in the Float64Array over the same buffer: the record's last 8 bytes. */
const T_EXP64 = 3
/** A contact's counts, in 32-bit words: its tokens kept, its rate window and count (hit()), its grant. */
const CONTACT_WORDS = 4
const C_TOKENS = 0
const C_RATE_WINDOW = 1
const C_RATE_COUNT = 2
const C_GRANTED = 3
const EMPTY = -1
/** The token table is rebuilt (dropping the dead, growing if still full) past this share of used slots. */
const MAX_LOAD = 0.7
/** After a rebuild at most this share of the token slots is used, so rebuilds stay rare. */
const REBUILT_LOAD = 0.5
/** The contacts' index is kept at most this full: it is probed on every heartbeat. */
const INDEX_LOAD = 0.5
const MIN_SLOTS = 1024
const US = '\x1f'

/** A client token's claims, as the verifier hands them out (TokenClaims of the client audience). */
export interface ClientClaims {
  readonly aud: 'cat:client'
  sub: string
  clientId: string
  name: string | undefined
  company: string | undefined
  /** Expiry, seconds since the epoch. */
  exp: number
}

export interface ClientContactsOptions {
  now: () => number
  /** A token unused this long is forgotten when room is needed. */
  keepIdleMs: number
  /** Most contacts remembered; past it, new tokens are verified each time and not kept. */
  maxContacts?: number
}

export const DEFAULT_MAX_CONTACTS = 4_000_000

function fnv(text: string, from = 0, to = text.length): number {
  let hash = 0x811c9dc5
  for (let i = from; i < to; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** Where the token's signature starts (after its last dot). */
function signatureStart(token: string): number {
  return token.lastIndexOf('.') + 1
}

/** base64url character code → its 6 bits; -1 for any other. */
const BASE64URL = new Int8Array(128).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) BASE64URL[c.charCodeAt(0)] = i

/** Word `w` of the signature starting at `sig`: five characters' bits; -1 if one is not base64url. */
function signatureWord(token: string, sig: number, w: number): number {
  let word = 0
  for (let i = sig + w * 5, end = i + 5; i < end; i += 1) {
    const code = token.charCodeAt(i)
    const bits = code < 128 ? (BASE64URL[code] as number) : -1
    if (bits < 0) return -1
    word = (word << 6) | bits
  }
  return word
}

/**
 * A 32-bit hash of the whole text: FNV-1a in four lanes over alternate characters, which the
 * processor runs side by side (one lane's multiplications wait on each other), then mixed.
 */
function textHash(text: string): number {
  const n = text.length
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  let c = 0x1b873593
  let d = 0x2f5a3b71
  let i = 0
  for (; i + 3 < n; i += 4) {
    a = Math.imul(a ^ text.charCodeAt(i), 0x01000193)
    b = Math.imul(b ^ text.charCodeAt(i + 1), 0x01000193)
    c = Math.imul(c ^ text.charCodeAt(i + 2), 0x01000193)
    d = Math.imul(d ^ text.charCodeAt(i + 3), 0x01000193)
  }
  for (; i < n; i += 1) a = Math.imul(a ^ text.charCodeAt(i), 0x01000193)
  return (Math.imul(a ^ (b >>> 15), 0x2c1b3c6d) ^ Math.imul(c ^ (d >>> 13), 0x297a2d39) ^ n) >>> 0
}

/**
 * One string of a contact's claims: its id first (ids hold no control character, so the first
 * US ends it), then a 0/1 per optional claim telling undefined from empty, then the others.
 * Parsed back from JSON, so it is one flat string, not a chain of the pieces.
 */
function pack(claims: ClientClaims): string {
  const text = `${claims.sub}${US}${claims.name === undefined ? 0 : 1}${claims.company === undefined ? 0 : 1}${claims.clientId}${US}${claims.name ?? ''}${US}${claims.company ?? ''}`
  return JSON.parse(JSON.stringify(text)) as string
}

function unpack(packed: string, exp: number): ClientClaims {
  const s = packed.indexOf(US)
  const a = packed.indexOf(US, s + 3)
  const b = packed.indexOf(US, a + 1)
  return {
    aud: 'cat:client',
    sub: packed.slice(0, s),
    clientId: packed.slice(s + 3, a),
    name: packed.charCodeAt(s + 1) === 49 ? packed.slice(a + 1, b) : undefined,
    company: packed.charCodeAt(s + 2) === 49 ? packed.slice(b + 1) : undefined,
    exp,
  }
}

/** Whether the packed claims are those of contact `sub`. */
function isOf(packed: string | undefined, sub: string): boolean {
  return packed !== undefined && packed.length > sub.length && packed.charCodeAt(sub.length) === 0x1f && packed.startsWith(sub)
}


/** The contacts: dense indexes, found by id through an open-addressing index. */
class Contacts {
  /** Per contact its claims, packed (pack()), its id first; undefined for a free index. */
  packed: (string | undefined)[] = []
  /** Per contact CONTACT_WORDS: its tokens kept, its rate window and count, its grant. */
  counts = new Uint32Array(MIN_SLOTS * CONTACT_WORDS)
  private free: number[] = []
  private index = new Int32Array(MIN_SLOTS * 2).fill(EMPTY)
  size = 0

  constructor(readonly max: number) {}

  find(sub: string): number {
    const mask = this.index.length - 1
    for (let at = fnv(sub) & mask; ; at = (at + 1) & mask) {
      const contact = this.index[at] as number
      if (contact === EMPTY || isOf(this.packed[contact], sub)) return contact
    }
  }

  /** The contact's index, added (or its claims updated) as given; EMPTY when full. */
  upsert(claims: ClientClaims): number {
    let contact = this.find(claims.sub)
    const added = contact === EMPTY
    if (added) {
      if (this.size >= this.max) return EMPTY
      contact = this.free.pop() ?? this.packed.length
      if ((contact + 1) * CONTACT_WORDS > this.counts.length) this.growCounts()
      this.counts.fill(0, contact * CONTACT_WORDS, (contact + 1) * CONTACT_WORDS)
      this.size += 1
    }
    this.packed[contact] = pack(claims)
    if (added) {
      if (this.size > this.index.length * INDEX_LOAD) this.reindex(this.index.length * 2)
      else this.place(contact)
    }
    return contact
  }

  claims(contact: number, exp: number): ClientClaims {
    return unpack(this.packed[contact] as string, exp)
  }

  /** Forgets the contacts left without tokens (counted afresh by the caller), then rebuilds the index. */
  dropUnused(): void {
    for (let contact = 0; contact < this.packed.length; contact += 1) {
      if (this.packed[contact] === undefined || this.counts[contact * CONTACT_WORDS + C_TOKENS] !== 0) continue
      this.packed[contact] = undefined
      this.counts[contact * CONTACT_WORDS + C_GRANTED] = 0
      this.free.push(contact)
      this.size -= 1
    }
    let slots = MIN_SLOTS * 2
    while (this.size > slots * INDEX_LOAD) slots *= 2
    this.reindex(slots)
  }

  private place(contact: number): void {
    const mask = this.index.length - 1
    const packed = this.packed[contact] as string
    let at = fnv(packed, 0, packed.indexOf(US)) & mask
    while (this.index[at] !== EMPTY) at = (at + 1) & mask
    this.index[at] = contact
  }

  private reindex(slots: number): void {
    this.index = new Int32Array(slots).fill(EMPTY)
    for (let contact = 0; contact < this.packed.length; contact += 1) if (this.packed[contact] !== undefined) this.place(contact)
  }

  private growCounts(): void {
    const next = new Uint32Array(this.counts.length * 2)
    next.set(this.counts)
    this.counts = next
  }
}

/** The verified tokens of client contacts, and the contacts' claims and consent. */
export class ClientContacts {
  private readonly contacts: Contacts
  private readonly now: () => number
  private keepIdleS: number
  private slots = 0
  private used = 0
  /** The token records, TOKEN_WORDS each, and the same buffer as float64 for their expiry. */
  private records = new Uint32Array(0)
  private records64 = new Float64Array(0)
  /** The contact of the last token found or remembered: the limit and the consent check that follow ask for it by id. */
  private lastContact = EMPTY
  /** Seconds of this process's clock at the start: lastUse counts from here, to fit 32 bits. */
  private readonly epochS: number

  constructor(options: ClientContactsOptions) {
    this.now = options.now
    this.keepIdleS = Math.ceil(options.keepIdleMs / 1000)
    this.contacts = new Contacts(options.maxContacts ?? DEFAULT_MAX_CONTACTS)
    this.epochS = Math.floor(options.now() / 1000)
    this.allocate(MIN_SLOTS)
  }

  /** Changes how long an unused token is kept (it follows the presence timeout, a live setting). */
  setKeepIdleMs(keepIdleMs: number): void {
    this.keepIdleS = Math.ceil(keepIdleMs / 1000)
  }

  /** Tokens and contacts remembered. */
  usage(): { tokens: number; contacts: number } {
    return { tokens: this.used, contacts: this.contacts.size }
  }

  /** The claims of a token verified before, or undefined. `exp` is the caller's to check. */
  lookup(token: string): ClientClaims | undefined {
    const slot = this.find(token)
    if (slot === EMPTY) return undefined
    const at = slot * TOKEN_WORDS
    this.records[at + T_LAST_USE] = this.clock()
    const contact = (this.records[at + T_CONTACT] as number) - 1
    this.lastContact = contact
    return this.contacts.claims(contact, this.records64[slot * (TOKEN_WORDS / 2) + T_EXP64] as number)
  }

  /** Remembers a token whose signature and claims were verified; the contact's claims become these. */
  remember(token: string, claims: ClientClaims): void {
    if (this.find(token) !== EMPTY) return
    const sig = signatureStart(token)
    const words = [0, 1, 2].map((w) => signatureWord(token, sig, w))
    // Not a signature this table can hold (too short, or not base64url): verified each time.
    if (token.length - sig < SIG_CHARS || words.some((word) => word < 0)) return
    if (this.used + 1 > this.slots * MAX_LOAD) this.rebuild()
    const contact = this.contacts.upsert(claims)
    if (contact === EMPTY) return
    const mask = this.slots - 1
    let slot = (words[0] as number) & mask
    while (this.records[slot * TOKEN_WORDS + T_CONTACT] !== 0) slot = (slot + 1) & mask
    const at = slot * TOKEN_WORDS
    this.records[at + T_CONTACT] = contact + 1
    this.records[at + T_HASH] = textHash(token)
    for (let w = 0; w < SIG_WORDS; w += 1) this.records[at + T_SIG + w] = words[w] as number
    this.records[at + T_LAST_USE] = this.clock()
    this.records64[slot * (TOKEN_WORDS / 2) + T_EXP64] = claims.exp
    this.contacts.counts[contact * CONTACT_WORDS + C_TOKENS] = (this.contacts.counts[contact * CONTACT_WORDS + C_TOKENS] as number) + 1
    this.lastContact = contact
    this.used += 1
  }

  /**
   * The consent service's memory of grants, kept beside the contacts: a word each. A contact
   * not remembered here (no token of it kept) is not remembered as granted either.
   */
  readonly grants: KnownGrants = {
    has: (sub) => {
      const contact = this.contactOf(sub)
      return contact !== EMPTY && this.contacts.counts[contact * CONTACT_WORDS + C_GRANTED] === 1
    },
    add: (sub) => this.setGranted(sub, 1),
    delete: (sub) => this.setGranted(sub, 0),
    clear: () => {
      const { counts } = this.contacts
      for (let at = C_GRANTED; at < counts.length; at += CONTACT_WORDS) counts[at] = 0
    },
  }

  /**
   * Counts a request of the contact in rate window `window` (limits/counters.ts) and returns
   * how many it made in that window so far, this one included (at most 65 535); -1 when the
   * contact is not remembered (no token of it kept), which is not counted.
   */
  hit(sub: string, window: number): number {
    const contact = this.contactOf(sub)
    if (contact === EMPTY) return -1
    const { counts } = this.contacts
    const at = contact * CONTACT_WORDS
    if (counts[at + C_RATE_WINDOW] !== window) {
      counts[at + C_RATE_WINDOW] = window
      counts[at + C_RATE_COUNT] = 0
    }
    const count = Math.min(0xffff, (counts[at + C_RATE_COUNT] as number) + 1)
    counts[at + C_RATE_COUNT] = count
    return count
  }

  /** The contact's index: the last token's contact when it is this one (a heartbeat asks three times), else found by id. */
  private contactOf(sub: string): number {
    const last = this.lastContact
    if (last !== EMPTY && isOf(this.contacts.packed[last], sub)) return last
    return this.contacts.find(sub)
  }

  private setGranted(sub: string, granted: 0 | 1): void {
    const contact = this.contactOf(sub)
    if (contact !== EMPTY) this.contacts.counts[contact * CONTACT_WORDS + C_GRANTED] = granted
  }

  private clock(): number {
    return Math.floor(this.now() / 1000) - this.epochS
  }

  /** The token's slot, or EMPTY: probed from its signature's first word, matched on all three and the text's hash. */
  private find(token: string): number {
    const sig = signatureStart(token)
    // Fewer characters of signature than kept: not a JWT this table could hold.
    if (token.length - sig < SIG_CHARS) return EMPTY
    const first = signatureWord(token, sig, 0)
    if (first < 0) return EMPTY
    const { records } = this
    const mask = this.slots - 1
    let hash = -1
    for (let slot = first & mask; ; slot = (slot + 1) & mask) {
      const at = slot * TOKEN_WORDS
      if (records[at + T_CONTACT] === 0) return EMPTY
      if (records[at + T_SIG] !== first) continue
      if (hash === -1) hash = textHash(token)
      if (records[at + T_HASH] === hash && records[at + T_SIG + 1] === signatureWord(token, sig, 1) && records[at + T_SIG + 2] === signatureWord(token, sig, 2)) return slot
    }
  }

  private allocate(slots: number): void {
    this.slots = slots
    const buffer = new ArrayBuffer(slots * TOKEN_WORDS * 4)
    this.records = new Uint32Array(buffer)
    this.records64 = new Float64Array(buffer)
  }

  /** Drops expired and idle tokens and the contacts left without any; grows if still full. */
  private rebuild(): void {
    const old = { slots: this.slots, records: this.records, records64: this.records64 }
    const nowS = this.now() / 1000
    const idleBefore = this.clock() - this.keepIdleS
    const live: number[] = []
    const { counts } = this.contacts
    for (let at = C_TOKENS; at < counts.length; at += CONTACT_WORDS) counts[at] = 0
    for (let slot = 0; slot < old.slots; slot += 1) {
      const at = slot * TOKEN_WORDS
      const contact = (old.records[at + T_CONTACT] as number) - 1
      if (contact === EMPTY || (old.records64[slot * (TOKEN_WORDS / 2) + T_EXP64] as number) < nowS || (old.records[at + T_LAST_USE] as number) < idleBefore) continue
      live.push(slot)
      counts[contact * CONTACT_WORDS + C_TOKENS] = (counts[contact * CONTACT_WORDS + C_TOKENS] as number) + 1
    }
    this.contacts.dropUnused()
    this.lastContact = EMPTY
    let slots = MIN_SLOTS
    while (live.length + 1 > slots * REBUILT_LOAD) slots *= 2
    this.allocate(slots)
    const mask = slots - 1
    for (const from of live) {
      let slot = (old.records[from * TOKEN_WORDS + T_SIG] as number) & mask
      while (this.records[slot * TOKEN_WORDS + T_CONTACT] !== 0) slot = (slot + 1) & mask
      this.records.set(old.records.subarray(from * TOKEN_WORDS, (from + 1) * TOKEN_WORDS), slot * TOKEN_WORDS)
    }
    this.used = live.length
  }
}
