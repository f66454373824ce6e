import type { LicenseConfig } from '../config/config.js'
import { verifyLease } from './lease.js'
import { LICENSE_STATES, type LicenseState, type LicenseView } from './license-view.js'

export { LICENSE_STATES, type LicenseState, type LicenseView }

const DAY_MS = 86_400_000
/** How long an install works with the licence server unreachable, from its last answer. */
export const GRACE_MS = 7 * DAY_MS
/** How often the lease is renewed. */
export const REVALIDATE_MS = DAY_MS
/** A lease not renewed for this long counts as unreachable even without a failed attempt (no instance got to try). */
export const OVERDUE_MS = REVALIDATE_MS + 2 * 3_600_000

/**
 * What cat_install_state 'license' holds (JSON): the key, the last lease and its signature as
 * received, and the validation schedule every instance follows. Times are ms on this install's clock.
 */
export interface LicenseRecord {
  v: 1
  key: string
  lease: string
  signature: string
  /** When the licence server last answered with a lease. */
  checkedAt: number
  /** When the last attempt since `checkedAt` failed (the server unreachable), or null. */
  failedAt: number | null
  /** Why that attempt failed, for the dashboard (no key in it). */
  failure: string | null
  /** Failed attempts in a row; sets the retry backoff. */
  failures: number
  /** When the next validation is due (any instance may make it). */
  nextCheckAt: number
}


const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

export function parseLicenseRecord(value: string): LicenseRecord | undefined {
  try {
    const record = JSON.parse(value) as Partial<LicenseRecord>
    if (record.v !== 1 || typeof record.key !== 'string' || typeof record.lease !== 'string' || typeof record.signature !== 'string' || typeof record.checkedAt !== 'number') return undefined
    return {
      v: 1,
      key: record.key,
      lease: record.lease,
      signature: record.signature,
      checkedAt: record.checkedAt,
      failedAt: typeof record.failedAt === 'number' ? record.failedAt : null,
      failure: typeof record.failure === 'string' ? record.failure : null,
      failures: typeof record.failures === 'number' ? record.failures : 0,
      nextCheckAt: typeof record.nextCheckAt === 'number' ? record.nextCheckAt : 0,
    }
  } catch {
    return undefined
  }
}

/** Whether the staff side is served in this state. */
export function isLicensed(view: LicenseView): boolean {
  return !view.enabled || view.state === 'active' || view.state === 'grace'
}

/**
 * The state of the install at `now`, from what is stored (docs/licensing.md, "States"). A
 * lease counts only when the vendor's key signed exactly its bytes and it names the stored key;
 * anything else is `invalid`, whatever it says.
 */
export function evaluateLicense(license: LicenseConfig | undefined, record: LicenseRecord | undefined, now: number, pending?: string): LicenseView {
  const none = { validUntil: null, graceUntil: null, checkedAt: null, daysLeft: null, keyHint: null }
  if (license === undefined) {
    return { enabled: false, state: 'unlicensed', domain: null, ...none, message: 'Licensing is off on this server (CAT_LICENSE_SERVER_URL is unset): nothing is restricted.' }
  }
  const { domain } = license
  if (record === undefined) {
    const why = pending === undefined ? '' : ` Activating CAT_LICENSE_KEY failed (${pending}); it is retried.`
    return { enabled: true, state: 'unlicensed', domain, ...none, message: `No licence key is active: an admin enters the key in the dashboard's licence panel (or sets CAT_LICENSE_KEY).${why}` }
  }
  const keyHint = record.key.slice(-4)
  const lease = verifyLease(license.publicKey, record)
  if (lease === undefined || lease.key !== record.key) {
    return { enabled: true, state: 'invalid', domain, ...none, keyHint, checkedAt: record.checkedAt, message: "The stored lease is not signed by the vendor's key (altered, or from another licence server): activate the key again." }
  }
  const anchor = Math.min(record.checkedAt, lease.issuedAt)
  const graceUntil = anchor + GRACE_MS
  const base = { enabled: true, domain, validUntil: lease.validUntil === 0 ? null : lease.validUntil, checkedAt: record.checkedAt, keyHint, graceUntil: null, daysLeft: null }
  if (lease.status === 'revoked') return { ...base, state: 'invalid', message: 'The licence server has revoked this key: contact the vendor.' }
  if (lease.status === 'unknown') return { ...base, state: 'invalid', message: 'The licence server does not know this key: check it and activate it again.' }
  if (lease.status === 'domain_mismatch' || lease.domain !== domain) {
    return { ...base, state: 'domain_mismatch', message: `This key is licensed for another domain than ${domain} (the host of CAT_PUBLIC_URL): use the key of this domain, or ask the vendor to bind it.` }
  }
  if (lease.status === 'expired' || now >= lease.validUntil) {
    return { ...base, state: 'expired', message: `The licence's term ended on ${day(lease.validUntil)}: renew it with the vendor, then activate the key again.` }
  }
  if (now >= graceUntil) {
    return { ...base, state: 'expired', message: `The licence server has not been reached since ${day(anchor)} and the 7 days of grace are over: let this server reach ${license.serverUrl}, then activate the key again.` }
  }
  if (record.failedAt !== null || now >= anchor + OVERDUE_MS) {
    const daysLeft = Math.ceil((graceUntil - now) / DAY_MS)
    const why = record.failure === null ? 'it has not been reached for a day' : record.failure
    return { ...base, state: 'grace', graceUntil, daysLeft, message: `The licence server cannot be reached (${why}); the licence keeps working for ${daysLeft} more day${daysLeft === 1 ? '' : 's'}, until ${day(graceUntil)}.` }
  }
  return { ...base, state: 'active', graceUntil, message: `Licensed to ${domain} until ${day(lease.validUntil)}.` }
}
