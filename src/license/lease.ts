import { sign, verify, type KeyObject } from 'node:crypto'

/** What the licence server says of a key for a domain (docs/licensing.md, "Lease"). */
export const LEASE_STATUSES = ['active', 'expired', 'revoked', 'domain_mismatch', 'unknown'] as const
export type LeaseStatus = (typeof LEASE_STATUSES)[number]

/**
 * A lease: the licence server's signed answer about one key on one domain. Times are ms since
 * the epoch on the licence server's clock.
 */
export interface Lease {
  /** The format's version; 1. */
  v: 1
  key: string
  /** The domain the install asked for (lower case), whatever the key is bound to. */
  domain: string
  status: LeaseStatus
  /** The end of the key's term; 0 when the key is unknown. */
  validUntil: number
  issuedAt: number
}

/** The lease with its signature, as the licence server sends it and the service stores it. */
export interface SignedLease {
  /** The canonical serialisation of the lease: exactly the bytes signed (UTF-8). */
  lease: string
  /** Ed25519 signature of `lease`'s UTF-8 bytes, base64. */
  signature: string
}

/** The pattern of a licence key (CAT_LICENSE_KEY and POST /admin/api/license). */
export const LICENSE_KEY_PATTERN = /^[A-Za-z0-9_-]{8,128}$/
/** A domain as the licence server takes it: a host name or address, lower case, no port. */
export const DOMAIN_PATTERN = /^[a-z0-9]([a-z0-9.:[\]-]{0,251}[a-z0-9\]])?$/

/**
 * The canonical serialisation: a JSON object with exactly these members in this order
 * (v, key, domain, status, validUntil, issuedAt), no whitespace, strings as JSON.stringify
 * writes them, times as integers.
 */
export function canonicalLease(lease: Lease): string {
  return JSON.stringify({ v: 1, key: lease.key, domain: lease.domain, status: lease.status, validUntil: Math.trunc(lease.validUntil), issuedAt: Math.trunc(lease.issuedAt) })
}

export function signLease(privateKey: KeyObject, lease: Lease): SignedLease {
  const text = canonicalLease(lease)
  return { lease: text, signature: sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64') }
}

function isLease(value: unknown): value is Lease {
  if (typeof value !== 'object' || value === null) return false
  const lease = value as Record<string, unknown>
  return lease.v === 1 && typeof lease.key === 'string' && typeof lease.domain === 'string'
    && typeof lease.status === 'string' && (LEASE_STATUSES as readonly string[]).includes(lease.status)
    && Number.isSafeInteger(lease.validUntil) && Number.isSafeInteger(lease.issuedAt)
}

/**
 * The lease, when `signature` is the vendor's over exactly these bytes and the bytes are a
 * canonical lease; undefined otherwise (one byte changed, another key's signature, a lease
 * re-serialised in another form).
 */
export function verifyLease(publicKey: KeyObject, signed: SignedLease): Lease | undefined {
  if (typeof signed.lease !== 'string' || typeof signed.signature !== 'string') return undefined
  const signature = Buffer.from(signed.signature, 'base64')
  let good: boolean
  try {
    good = signature.length === 64 && verify(null, Buffer.from(signed.lease, 'utf8'), publicKey, signature)
  } catch {
    good = false
  }
  if (!good) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(signed.lease)
  } catch {
    return undefined
  }
  if (!isLease(parsed) || canonicalLease(parsed) !== signed.lease) return undefined
  return parsed
}
