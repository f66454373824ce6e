import { createHmac, timingSafeEqual } from 'node:crypto'
import { AppError } from '../errors/errors.js'
import type { ClientClaims, ClientContacts } from './client-contacts.js'
import type { AuthFailureGuard } from '../limits/auth-failures.js'
import { EVERY_CLIENT, visibilityOf, type Visibility } from './visibility.js'

/**
 * JWT HS256, written here rather than taken from a library: tokens have exactly one
 * algorithm, and the hot path wants a verify that is a lookup for a token seen before (a
 * contact's tab sends the same token every 30 s). Client tokens are remembered in the compact
 * table of client-contacts.ts, which holds a million contacts; other tokens (staff, few) in a
 * map bounded in bytes. Any other `alg`, `none` included, is refused before a key is touched.
 */

export const AUDIENCES = { client: 'cat:client', admin: 'cat:admin' } as const
export type Audience = (typeof AUDIENCES)[keyof typeof AUDIENCES]

/** Seconds of clock skew allowed on `exp`, `nbf` and `iat`. */
export const CLOCK_SKEW_S = 30
/** Client tokens longer than this are refused unread. */
export const MAX_TOKEN_LENGTH = 4096
/**
 * Admin tokens longer than this are refused unread: room for a `clients` claim of 10 000 ids
 * of up to 12 digits. The HTTP server's header limit (app.ts) lets such a token through as a
 * header or in the WebSocket's URL.
 */
export const MAX_ADMIN_TOKEN_LENGTH = 256 * 1024
/** The most ids a `clients` claim may list. */
export const MAX_CLIENTS_CLAIM = 20_000
/** Longest `sub` and `client_id`, in UTF-16 code units (JavaScript's `length`); no control characters. */
export const MAX_ID_LENGTH = 128
const MAX_NAME_LENGTH = 200
/**
 * Bytes the verified-token cache may hold, by its own estimate (entryBytes): enough for the
 * tokens of 100 000 online contacts at a typical 300 characters each, and at most about 30 000
 * tokens of the longest size allowed.
 */
export const TOKEN_CACHE_BYTES = 128 * 1024 * 1024
/**
 * What an entry costs beside its strings: the map slot, the verified record, its audience
 * array and the claims objects made per audience (measured on Node 20: about 360 bytes).
 */
const ENTRY_OVERHEAD_BYTES = 384

/** What a verified token says. Not to be changed: staff tokens' claims are shared between uses. */
export interface TokenClaims {
  readonly aud: Audience
  /** Contact id (client tokens) or staff id (admin tokens). */
  sub: string
  /** Company id; client tokens only. */
  clientId: string | undefined
  name: string | undefined
  company: string | undefined
  /** Expiry, seconds since the epoch. */
  exp: number
  /** Admin tokens only: `admin` (the default when the claim is absent) or `staff` (watch and read only). */
  readonly role?: Role
  /** Admin tokens only: the clients whose contacts the token sees (the `clients` claim; every client without it). */
  readonly visibility?: Visibility
}

/** What an admin token may do: `admin` everything, `staff` watch and read. */
export const ROLES = ['admin', 'staff'] as const
export type Role = (typeof ROLES)[number]

interface Verified {
  audiences: readonly string[]
  sub: string
  clientId: string | undefined
  name: string | undefined
  company: string | undefined
  role: Role | undefined
  visibility: Visibility
  /** Characters of the `clients` claim's ids, for the cache's estimate. */
  clientsLength: number
  exp: number
  nbf: number | undefined
  iat: number | undefined
  /** The claims verify() returns, by audience, made on first use. */
  claims: Partial<Record<Audience, TokenClaims>>
}

function invalid(message: string): never {
  throw new AppError('invalid_token', message)
}

function b64urlJson(part: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    invalid('token is not a JWT')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid('token is not a JWT')
  return value as Record<string, unknown>
}

function idClaim(value: unknown, name: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(value)) return value
  invalid(`claim ${name} must be a non-empty id of at most ${MAX_ID_LENGTH} characters`)
}

function roleClaim(value: unknown): Role | undefined {
  if (value === undefined || value === null) return undefined
  if (value === 'admin' || value === 'staff') return value
  invalid('claim role must be "admin" or "staff"')
}

/** The `clients` claim: an array of client ids (strings, or integers as Perfex's ids are). */
function clientsClaim(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) invalid('claim clients must be an array of client ids')
  if (value.length > MAX_CLIENTS_CLAIM) invalid(`claim clients lists more than ${MAX_CLIENTS_CLAIM} clients`)
  return value.map((id: unknown) => idClaim(id, 'clients'))
}

function textClaim(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') invalid(`claim ${name} must be a string`)
  if (value.length <= MAX_NAME_LENGTH) return value
  // A copy, not a slice: V8's slice would keep the whole parsed string alive in the cache.
  return Buffer.from(value.slice(0, MAX_NAME_LENGTH), 'utf16le').toString('utf16le')
}

function optionalTime(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) invalid(`token ${name} is not a number`)
  return value
}

/** The cache's estimate of an entry's memory: the token (one byte a character), its kept strings (two), the rest. */
function entryBytes(token: string, verified: Verified): number {
  const kept = verified.sub.length + (verified.clientId?.length ?? 0) + (verified.name?.length ?? 0) + (verified.company?.length ?? 0) + verified.clientsLength
  // A listed client costs its string and a slot in the claim's set.
  const listed = verified.visibility.clients?.size ?? 0
  return token.length + 2 * kept + 32 * listed + ENTRY_OVERHEAD_BYTES
}

function hmac(secret: string, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest()
}

export interface SignInput {
  aud: 'client' | 'admin'
  sub: string
  clientId?: string
  name?: string
  company?: string
  /** Admin tokens: `staff` for a read-only staff member; absent means `admin`. */
  role?: Role
  /** Admin tokens: the only clients whose contacts the token sees; absent means every client. */
  clients?: readonly string[]
  /** Lifetime in seconds. */
  ttlS: number
}

/** Mints a token signed with `secrets[0]`: the first secret signs, all verify, so a new secret put first rotates the keys. */
export function signToken(input: SignInput, secrets: readonly string[], nowMs: number = Date.now()): string {
  const secret = secrets[0]
  if (secret === undefined) throw new Error('no secret to sign with')
  const header = { alg: 'HS256', typ: 'JWT', kid: '0' }
  const iat = Math.floor(nowMs / 1000)
  const payload: Record<string, unknown> = { aud: AUDIENCES[input.aud], sub: input.sub, iat, exp: iat + input.ttlS }
  if (input.clientId !== undefined) payload.client_id = input.clientId
  if (input.name !== undefined) payload.name = input.name
  if (input.company !== undefined) payload.company = input.company
  if (input.role !== undefined) payload.role = input.role
  if (input.clients !== undefined) payload.clients = input.clients
  const signingInput = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${signingInput}.${hmac(secret, signingInput).toString('base64url')}`
}

export interface TokenVerifierOptions {
  secrets: readonly string[]
  now: () => number
  /** Estimated bytes of verified tokens remembered (entryBytes); the oldest are forgotten past this. */
  cacheBytes?: number
  /** Where client tokens are remembered; without it, in the byte-bounded map with the others. */
  clients?: ClientContacts
}

export interface TokenVerifier {
  /**
   * Returns the claims, or throws AppError('invalid_token') naming what is wrong. With the
   * requester's `address` and a failure guard in use: a token not verified before is refused
   * (429) while the address is over its failures, and a failure is counted against it.
   */
  verify(token: string | undefined, audience: Audience, address?: string): TokenClaims
  /**
   * The claims of a token verified before and not expired since; undefined for any other,
   * which verify() then judges. Never computes an HMAC: a lane that answers without Fastify
   * (routes/heartbeat.ts) asks it, and hands what it does not know to the route.
   */
  recall(token: string, audience: Audience): TokenClaims | undefined
  /** From now on, verify() with an address asks `guard` (limits/auth-failures.ts). */
  useFailureGuard(guard: AuthFailureGuard): void
  /** Tokens cached and their estimated bytes. */
  cacheUsage(): { entries: number; bytes: number }
}

export function createTokenVerifier({ secrets, now, cacheBytes = TOKEN_CACHE_BYTES, clients }: TokenVerifierOptions): TokenVerifier {
  let guard: AuthFailureGuard | undefined
  // Only successful verifications are cached: a flood of forged tokens must not evict good ones
  // for free, and every entry's exp is checked again on each hit, so an expired token stays refused.
  // Bounded by bytes, not entries: valid tokens may be up to 4 KiB each.
  const cache = new Map<string, Verified>()
  let bytes = 0

  function verifySignature(token: string): Verified {
    const first = token.indexOf('.')
    const second = token.indexOf('.', first + 1)
    if (first < 1 || second < 0 || token.indexOf('.', second + 1) !== -1) invalid('token is not a JWT')
    const header = b64urlJson(token.slice(0, first))
    if (header.alg !== 'HS256') invalid(`token algorithm ${JSON.stringify(header.alg ?? null)} is not allowed; only HS256 is`)
    let candidates: readonly string[] = secrets
    if (header.kid !== undefined) {
      const index = typeof header.kid === 'string' && /^(0|[1-9]\d{0,2})$/.test(header.kid) ? Number(header.kid) : -1
      const secret = secrets[index]
      if (secret === undefined) invalid('token kid names no configured secret')
      candidates = [secret]
    }
    const signingInput = token.slice(0, second)
    const signature = Buffer.from(token.slice(second + 1), 'base64url')
    // Buffer.from skips characters that are not base64url: only the canonical spelling counts,
    // or one good token could be re-spelt endlessly to flood the cache.
    if (signature.toString('base64url') !== token.slice(second + 1)) invalid('token signature is not valid')
    const ok = candidates.some((secret) => {
      const expected = hmac(secret, signingInput)
      return expected.length === signature.length && timingSafeEqual(expected, signature)
    })
    if (!ok) invalid('token signature is not valid')
    const payload = b64urlJson(token.slice(first + 1, second))
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) invalid('token has no exp')
    const aud = payload.aud
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : []
    const clients = clientsClaim(payload.clients)
    return {
      audiences,
      sub: idClaim(payload.sub, 'sub'),
      clientId: payload.client_id === undefined ? undefined : idClaim(payload.client_id, 'client_id'),
      name: textClaim(payload.name, 'name'),
      company: textClaim(payload.company, 'company'),
      role: roleClaim(payload.role),
      visibility: clients === undefined ? EVERY_CLIENT : visibilityOf(clients),
      clientsLength: clients === undefined ? 0 : clients.reduce((sum, id) => sum + id.length, 0),
      exp: payload.exp,
      nbf: optionalTime(payload.nbf, 'nbf'),
      iat: optionalTime(payload.iat, 'iat'),
      claims: {},
    }
  }

  /** The claims of a token whose signature is good, once its times and audience are checked. */
  function checkedClaims(verified: Verified, audience: Audience): TokenClaims {
    const nowS = now() / 1000
    if (nowS > verified.exp + CLOCK_SKEW_S) invalid('token has expired')
    if (verified.nbf !== undefined && nowS + CLOCK_SKEW_S < verified.nbf) invalid('token is not valid yet')
    if (verified.iat !== undefined && nowS + CLOCK_SKEW_S < verified.iat) invalid('token is issued in the future')
    if (!verified.audiences.includes(audience)) invalid(`token audience is not ${audience}`)
    if (audience === AUDIENCES.client && verified.clientId === undefined) invalid('client token has no client_id')
    // Made once per token and audience: a staff dashboard repeats its token.
    let claims = verified.claims[audience]
    if (claims === undefined) {
      const base = { aud: audience, sub: verified.sub, clientId: verified.clientId, name: verified.name, company: verified.company, exp: verified.exp }
      claims = Object.freeze(audience === AUDIENCES.admin ? { ...base, role: verified.role ?? 'admin', visibility: verified.visibility } : base)
      verified.claims[audience] = claims
    }
    return claims
  }

  function maxLengthOf(audience: Audience): number {
    return audience === AUDIENCES.admin ? MAX_ADMIN_TOKEN_LENGTH : MAX_TOKEN_LENGTH
  }

  /** The claims of a token verified before, without computing an HMAC; undefined when it was not. */
  function known(token: string, audience: Audience): TokenClaims | undefined {
    if (audience === AUDIENCES.client && clients !== undefined) {
      const claims = clients.lookup(token)
      // Checked when it was remembered: signature, audience, nbf and iat. Only exp can lapse.
      if (claims !== undefined && now() / 1000 > claims.exp + CLOCK_SKEW_S) invalid('token has expired')
      return claims
    }
    const verified = cache.get(token)
    return verified === undefined ? undefined : checkedClaims(verified, audience)
  }

  /** Checks a token not verified before, and remembers it. */
  function verifyNew(token: string, audience: Audience): TokenClaims {
    if (audience === AUDIENCES.client && clients !== undefined) {
      const claims = checkedClaims(verifySignature(token), audience)
      clients.remember(token, claims as ClientClaims)
      return claims
    }
    const verified = verifySignature(token)
    const size = entryBytes(token, verified)
    // Oldest first (a Map iterates in insertion order); a token alone over the cap is not kept.
    for (const [oldToken, old] of cache) {
      if (bytes + size <= cacheBytes) break
      cache.delete(oldToken)
      bytes -= entryBytes(oldToken, old)
    }
    if (bytes + size <= cacheBytes) {
      cache.set(token, verified)
      bytes += size
    }
    return checkedClaims(verified, audience)
  }

  function verifyToken(token: string | undefined, audience: Audience, address: string | undefined): TokenClaims {
    const maxLength = maxLengthOf(audience)
    if (token !== undefined && token !== '' && token.length <= maxLength) {
      const claims = known(token, audience)
      if (claims !== undefined) return claims
    }
    if (address !== undefined) guard?.check(address)
    if (token === undefined || token === '') invalid('token is missing')
    if (token.length > maxLength) invalid(`token is longer than ${maxLength} characters`)
    return verifyNew(token, audience)
  }

  return {
    recall(token, audience) {
      if (token === '' || token.length > maxLengthOf(audience)) return undefined
      try {
        return known(token, audience)
      } catch {
        return undefined
      }
    },
    verify(token, audience, address) {
      if (address === undefined || guard === undefined) return verifyToken(token, audience, undefined)
      try {
        return verifyToken(token, audience, address)
      } catch (error) {
        if (error instanceof AppError && error.code === 'invalid_token') guard.failed(address)
        throw error
      }
    },
    useFailureGuard(next) {
      guard = next
    },
    cacheUsage() {
      return { entries: cache.size, bytes }
    },
  }
}

/** Parses a lifetime such as `90`, `30s`, `15m`, `1h`, `7d` into seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim())
  if (match === null) throw new Error(`--ttl: expected a number with an optional unit s, m, h or d (e.g. 1h), got ${JSON.stringify(text)}`)
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd']
  const seconds = Number(match[1]) * unit
  if (seconds <= 0) throw new Error('--ttl: must be above zero')
  return seconds
}
