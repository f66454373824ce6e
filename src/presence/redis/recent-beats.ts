/**
 * The tabs whose beat this instance had applied by the fast path lately, and when. A beat of a
 * tab within the gap (gapAfterMs) of such a beat is on time whatever other instances did
 * meanwhile: the tab's last beat is at least as late as the one remembered. beat.lua then need
 * not read the tab's score to judge it: it moves the expiry with one `ZADD XX GT CH`, which
 * also checks the tab is still there and visible (a hidden tab's member is another). Every
 * other beat is judged as before, from the score. A tab forgotten (evicted, or never seen by
 * this instance) only costs that read.
 *
 * Kept in one Int32Array, as ClientContacts keeps its tokens (a couple of dozen bytes a tab,
 * nothing for the garbage collector to trace): entries of three words (two 32-bit hashes of the
 * tab's member, the second never 0 so that 0 marks an empty entry, and the second of the beat
 * since `epochMs`), placed by linear probing from where the first hash maps over at most
 * PROBES entries; a new tab that finds none of them free replaces the oldest. Seconds, rounded down, make the
 * check conservative: a beat counts as recent only when the whole second it fell in is within
 * the gap.
 */

const WORDS = 3
const MIN_ENTRIES = 1024
/** Entries looked at from where a tab maps: a few cache lines at most. */
const PROBES = 16
/** Rebuilt (dropping what is older than the gap) past this share of used entries... */
const MAX_LOAD = 0.6
/** ...to this share: 20 to 30 bytes a tab. */
const REBUILT_LOAD = 0.4

/** The two hashes of a tab's member, `hashes[0]` and `hashes[1]` (FNV-1a with two offsets, mixed). */
const hashes = new Int32Array(2)

function hashMember(member: string): void {
  let a = 0x811c9dc5
  let b = 0x2f5a3b71
  for (let i = 0; i < member.length; i += 1) {
    const c = member.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193)
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b)
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35)
  hashes[0] = a ^ (a >>> 15)
  hashes[1] = (b ^ (b >>> 16)) | 1
}

export class RecentBeats {
  private table = new Int32Array(MIN_ENTRIES * WORDS)
  private used = 0
  private readonly epochMs: number

  constructor(now: number) {
    this.epochMs = now
  }

  /** Entries in use. */
  get size(): number {
    return this.used
  }

  /** Bytes of the table. */
  get bytes(): number {
    return this.table.byteLength
  }

  /** The hashes of the member last given to recent(), for note(). */
  lastA = 0
  lastB = 0

  /**
   * Whether this instance had a fast-path beat of tab `member` applied within `withinMs`
   * before `at`. Leaves the member's hashes in lastA and lastB, for note().
   */
  recent(member: string, at: number, withinMs: number): boolean {
    hashMember(member)
    const a = (this.lastA = hashes[0] as number)
    const b = (this.lastB = hashes[1] as number)
    const entry = this.find(a, b)
    return entry >= 0 && at - ((this.table[entry * WORDS + 2] as number) * 1000 + this.epochMs) <= withinMs
  }

  /** Remembers a beat of the tab of hashes `a`, `b` applied at `at`. `keepMs`: what rebuilds keep. */
  note(a: number, b: number, at: number, keepMs: number): void {
    const second = Math.floor((at - this.epochMs) / 1000)
    const { table } = this
    const entries = table.length / WORDS
    let place = -1
    let oldest = -1
    for (let p = 0, e = slotOf(a, entries); p < PROBES; p += 1, e = e + 1 === entries ? 0 : e + 1) {
      const w = e * WORDS
      if (table[w + 1] === 0) {
        place = e
        this.used += 1
        break
      }
      if (table[w] === a && table[w + 1] === b) {
        place = e
        break
      }
      if (oldest === -1 || (table[w + 2] as number) < (table[oldest * WORDS + 2] as number)) oldest = e
    }
    const w = (place === -1 ? oldest : place) * WORDS
    table[w] = a
    table[w + 1] = b
    table[w + 2] = second
    if (this.used > entries * MAX_LOAD) this.rebuild(at, keepMs)
  }

  private find(a: number, b: number): number {
    const { table } = this
    const entries = table.length / WORDS
    for (let p = 0, e = slotOf(a, entries); p < PROBES; p += 1, e = e + 1 === entries ? 0 : e + 1) {
      const w = e * WORDS
      if (table[w + 1] === 0) return -1
      if (table[w] === a && table[w + 1] === b) return e
    }
    return -1
  }

  /** Keeps the entries within `keepMs` of `at`, in a table they fill to REBUILT_LOAD. */
  private rebuild(at: number, keepMs: number): void {
    const old = this.table
    const oldest = Math.floor((at - keepMs - this.epochMs) / 1000)
    let live = 0
    for (let e = 0; e < old.length; e += WORDS) if (old[e + 1] !== 0 && (old[e + 2] as number) >= oldest) live += 1
    this.table = new Int32Array(Math.max(MIN_ENTRIES, Math.ceil(live / REBUILT_LOAD)) * WORDS)
    this.used = 0
    for (let e = 0; e < old.length; e += WORDS) {
      if (old[e + 1] === 0 || (old[e + 2] as number) < oldest) continue
      // Seconds since the epoch back to this clock's ms: note() takes them as a beat's time.
      this.note(old[e] as number, old[e + 1] as number, (old[e + 2] as number) * 1000 + this.epochMs, keepMs)
    }
  }
}

/** The entry a hash maps to, of `entries` (a multiply and a shift: any table size, every bit of the hash used). */
function slotOf(hash: number, entries: number): number {
  return Math.floor(((hash >>> 0) * entries) / 0x1_0000_0000)
}
