/**
 * What this instance knows of the client contacts it has seen: which tokens it has verified,
 * each contact's claims, and whether the contact is known to have granted consent. Kept in
 * typed arrays rather than one object per token or contact, so that a million contacts cost a
 * couple of hundred bytes each in the heap and give the garbage collector almost nothing to
 * trace: per token a slot of fixed size in an open-addressing table; per contact its id and
 * one string of its other claims.
 *
 * A token is found by a 32-bit FNV-1a hash of its whole text, and is the one remembered only
 * when its length, hash and the first SIG_CHARS characters of its signature match: 96 bits of
 * an HMAC that only the portal can make, and a check of every character, so an altered token
 * misses and goes through full verification. A token not used for `keepIdleMs` (a contact
 * gone) or expired is dropped when the table next needs room; a contact is dropped with the
 * last of its tokens.
 */

import type { KnownGrants } from '../consent/consent-service.js'

/** Characters of the signature kept per token (base64url, 6 bits each). */
const SIG_CHARS = 16
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

/**
 * One string of a contact's other claims. A leading 0/1 per optional claim tells undefined
 * from empty. Parsed back from JSON, so it is one flat string, not a chain of the pieces.
 */
function pack(claims: ClientClaims): string {
  const text = `${claims.name === undefined ? 0 : 1}${claims.company === undefined ? 0 : 1}${claims.clientId}${US}${claims.name ?? ''}${US}${claims.company ?? ''}`
  return JSON.parse(JSON.stringify(text)) as string
}

function unpack(sub: string, packed: string, exp: number): ClientClaims {
  const a = packed.indexOf(US, 2)
  const b = packed.indexOf(US, a + 1)
  return {
    aud: 'cat:client',
    sub,
    clientId: packed.slice(2, a),
    name: packed.charCodeAt(0) === 49 ? packed.slice(a + 1, b) : undefined,
    company: packed.charCodeAt(1) === 49 ? packed.slice(b + 1) : undefined,
    exp,
  }
}

/** A typed array of twice the length, its values first. */
function doubled<T extends Uint8Array | Uint16Array | Uint32Array>(array: T): T {
  const next = new (array.constructor as new (length: number) => T)(array.length * 2)
  next.set(array)
  return next
}

/** The contacts: dense indexes, found by id through an open-addressing index. */
class Contacts {
  subs: (string | undefined)[] = []
  packed: (string | undefined)[] = []
  granted = new Uint8Array(MIN_SLOTS)
  tokens = new Uint32Array(MIN_SLOTS)
  /** The rate window the contact's requests were last counted in, and how many in it (hit()). */
  rateWindow = new Uint32Array(MIN_SLOTS)
  rateCount = new Uint16Array(MIN_SLOTS)
  private free: number[] = []
  private index = new Int32Array(MIN_SLOTS * 2).fill(EMPTY)
  size = 0

  constructor(readonly max: number) {}

  find(sub: string): number {
    const mask = this.index.length - 1
    for (let at = fnv(sub) & mask; ; at = (at + 1) & mask) {
      const contact = this.index[at] as number
      if (contact === EMPTY || this.subs[contact] === sub) return contact
    }
  }

  /** The contact's index, added (or its claims updated) as given; EMPTY when full. */
  upsert(claims: ClientClaims): number {
    let contact = this.find(claims.sub)
    if (contact === EMPTY) {
      if (this.size >= this.max) return EMPTY
      contact = this.free.pop() ?? this.subs.length
      if (contact >= this.granted.length) this.growArrays()
      this.subs[contact] = claims.sub
      this.granted[contact] = 0
      this.tokens[contact] = 0
      this.rateWindow[contact] = 0
      this.rateCount[contact] = 0
      this.size += 1
      if (this.size > this.index.length * INDEX_LOAD) this.reindex(this.index.length * 2)
      else this.place(contact)
    }
    this.packed[contact] = pack(claims)
    return contact
  }

  claims(contact: number, exp: number): ClientClaims {
    return unpack(this.subs[contact] as string, this.packed[contact] as string, exp)
  }

  /** Forgets the contacts left without tokens (counted afresh by the caller), then rebuilds the index. */
  dropUnused(): void {
    for (let contact = 0; contact < this.subs.length; contact += 1) {
      if (this.subs[contact] === undefined || this.tokens[contact] !== 0) continue
      this.subs[contact] = undefined
      this.packed[contact] = undefined
      this.granted[contact] = 0
      this.free.push(contact)
      this.size -= 1
    }
    let slots = MIN_SLOTS * 2
    while (this.size > slots * INDEX_LOAD) slots *= 2
    this.reindex(slots)
  }

  private place(contact: number): void {
    const mask = this.index.length - 1
    let at = fnv(this.subs[contact] as string) & mask
    while (this.index[at] !== EMPTY) at = (at + 1) & mask
    this.index[at] = contact
  }

  private reindex(slots: number): void {
    this.index = new Int32Array(slots).fill(EMPTY)
    for (let contact = 0; contact < this.subs.length; contact += 1) if (this.subs[contact] !== undefined) this.place(contact)
  }

  private growArrays(): void {
    this.granted = doubled(this.granted)
    this.tokens = doubled(this.tokens)
    this.rateWindow = doubled(this.rateWindow)
    this.rateCount = doubled(this.rateCount)
  }
}

/** The verified tokens of client contacts, and the contacts' claims and consent. */
export class ClientContacts {
  private readonly contacts: Contacts
  private readonly now: () => number
  private keepIdleS: number
  private slots = 0
  private used = 0
  private hash = new Uint32Array(0)
  private length = new Uint16Array(0)
  private signature = new Uint8Array(0)
  private exp = new Float64Array(0)
  private lastUse = new Uint32Array(0)
  private contact = new Int32Array(0)
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
    const slot = this.find(token, fnv(token))
    if (slot === EMPTY) return undefined
    this.lastUse[slot] = this.clock()
    return this.contacts.claims(this.contact[slot] as number, this.exp[slot] as number)
  }

  /** Remembers a token whose signature and claims were verified; the contact's claims become these. */
  remember(token: string, claims: ClientClaims): void {
    const hash = fnv(token)
    if (this.find(token, hash) !== EMPTY || token.length > 0xffff) return
    if (this.used + 1 > this.slots * MAX_LOAD) this.rebuild()
    const contact = this.contacts.upsert(claims)
    if (contact === EMPTY) return
    const mask = this.slots - 1
    let slot = hash & mask
    while (this.contact[slot] !== EMPTY) slot = (slot + 1) & mask
    this.hash[slot] = hash
    this.length[slot] = token.length
    const sig = signatureStart(token)
    for (let i = 0; i < SIG_CHARS; i += 1) this.signature[slot * SIG_CHARS + i] = token.charCodeAt(sig + i)
    this.exp[slot] = claims.exp
    this.lastUse[slot] = this.clock()
    this.contact[slot] = contact
    this.contacts.tokens[contact] = (this.contacts.tokens[contact] as number) + 1
    this.used += 1
  }

  /**
   * The consent service's memory of grants, kept beside the contacts: a byte each. A contact
   * not remembered here (no token of it kept) is not remembered as granted either.
   */
  readonly grants: KnownGrants = {
    has: (sub) => {
      const contact = this.contacts.find(sub)
      return contact !== EMPTY && this.contacts.granted[contact] === 1
    },
    add: (sub) => this.setGranted(sub, 1),
    delete: (sub) => this.setGranted(sub, 0),
    clear: () => this.contacts.granted.fill(0),
  }

  /**
   * Counts a request of the contact in rate window `window` (limits/counters.ts) and returns
   * how many it made in that window so far, this one included (at most 65 535); -1 when the
   * contact is not remembered (no token of it kept), which is not counted.
   */
  hit(sub: string, window: number): number {
    const { contacts } = this
    const contact = contacts.find(sub)
    if (contact === EMPTY) return -1
    if (contacts.rateWindow[contact] !== window) {
      contacts.rateWindow[contact] = window
      contacts.rateCount[contact] = 0
    }
    const count = Math.min(0xffff, (contacts.rateCount[contact] as number) + 1)
    contacts.rateCount[contact] = count
    return count
  }

  private setGranted(sub: string, granted: 0 | 1): void {
    const contact = this.contacts.find(sub)
    if (contact !== EMPTY) this.contacts.granted[contact] = granted
  }

  private clock(): number {
    return Math.floor(this.now() / 1000) - this.epochS
  }

  private find(token: string, hash: number): number {
    const mask = this.slots - 1
    const sig = signatureStart(token)
    // Fewer characters of signature than kept: not a JWT this table could hold.
    if (token.length - sig < SIG_CHARS) return EMPTY
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      if (this.contact[slot] === EMPTY) return EMPTY
      if (this.hash[slot] === hash && this.length[slot] === token.length && this.sameSignature(slot, token, sig)) return slot
    }
  }

  private sameSignature(slot: number, token: string, sig: number): boolean {
    const base = slot * SIG_CHARS
    for (let i = 0; i < SIG_CHARS; i += 1) if (this.signature[base + i] !== token.charCodeAt(sig + i)) return false
    return true
  }

  private allocate(slots: number): void {
    this.slots = slots
    this.hash = new Uint32Array(slots)
    this.length = new Uint16Array(slots)
    this.signature = new Uint8Array(slots * SIG_CHARS)
    this.exp = new Float64Array(slots)
    this.lastUse = new Uint32Array(slots)
    this.contact = new Int32Array(slots).fill(EMPTY)
  }

  /** Drops expired and idle tokens and the contacts left without any; grows if still full. */
  private rebuild(): void {
    const old = { slots: this.slots, hash: this.hash, length: this.length, signature: this.signature, exp: this.exp, lastUse: this.lastUse, contact: this.contact }
    const nowS = this.now() / 1000
    const idleBefore = this.clock() - this.keepIdleS
    const live: number[] = []
    this.contacts.tokens.fill(0)
    for (let slot = 0; slot < old.slots; slot += 1) {
      const contact = old.contact[slot] as number
      if (contact === EMPTY || (old.exp[slot] as number) < nowS || (old.lastUse[slot] as number) < idleBefore) continue
      live.push(slot)
      this.contacts.tokens[contact] = (this.contacts.tokens[contact] as number) + 1
    }
    this.contacts.dropUnused()
    let slots = MIN_SLOTS
    while (live.length + 1 > slots * REBUILT_LOAD) slots *= 2
    this.allocate(slots)
    const mask = slots - 1
    for (const from of live) {
      let slot = (old.hash[from] as number) & mask
      while (this.contact[slot] !== EMPTY) slot = (slot + 1) & mask
      this.hash[slot] = old.hash[from] as number
      this.length[slot] = old.length[from] as number
      this.signature.set(old.signature.subarray(from * SIG_CHARS, (from + 1) * SIG_CHARS), slot * SIG_CHARS)
      this.exp[slot] = old.exp[from] as number
      this.lastUse[slot] = old.lastUse[from] as number
      this.contact[slot] = old.contact[from] as number
    }
    this.used = live.length
  }
}
