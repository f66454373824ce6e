import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import { AUDIENCES, type Role, type TokenClaims, type TokenVerifier } from './tokens.js'
import { AppError } from '../errors/errors.js'
import { limitRoutes } from '../limits/route-limits.js'
import { assertLicensed } from '../license/license-gate.js'
import { visibilityOf, type Visibility } from './visibility.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified admin token of a request to a staffOnly route; undefined elsewhere. */
    staff: TokenClaims | undefined
  }
}

/** The admin token of a REST call: `Authorization: Bearer …`. Throws invalid_token. */
export function verifyBearer(tokens: TokenVerifier, request: FastifyRequest): TokenClaims {
  const header = request.headers.authorization
  const token = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined
  return tokens.verify(token, AUDIENCES.admin, request.ip)
}

/** The role of verified admin claims: `admin` unless the token says `staff`. */
export function roleOf(claims: TokenClaims): Role {
  return claims.role ?? 'admin'
}

/**
 * Throws 403 forbidden unless the staff member of `request` (a staffOnly route) has the admin
 * role: settings, licence activation and erasure are the admin's; `staff` watches and reads.
 */
export function requireAdmin(request: FastifyRequest, what: string): void {
  const claims = request.staff
  if (claims === undefined || roleOf(claims) !== 'admin') throw new AppError('forbidden', `${what} needs an admin token (role "admin"); this token's role is "staff"`)
}

/** Sees no client: what a request without verified staff claims sees, should one reach a route. */
const NO_CLIENT = visibilityOf([])

/** The clients whose contacts the staff member of `request` (a staffOnly route) sees. */
export function staffVisibility(request: FastifyRequest): Visibility {
  return request.staff?.visibility ?? NO_CLIENT
}

/** The methods that only read: every other one changes something. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** True when `method` (one or several, as a route declares them) may change something. */
function changes(method: RouteOptions['method']): boolean {
  return (typeof method === 'string' ? [method] : method).some((m) => !READ_METHODS.has(m.toUpperCase()))
}

export interface StaffOnlyOptions {
  /**
   * `required` (the default): with licensing on and the licence neither active nor in grace,
   * reads (GET, HEAD) answer 402 license_required after the token is verified; changes such
   * as an erasure stay available. `exempt`: the licence routes themselves.
   */
  license?: 'required' | 'exempt'
}

/**
 * Every route of `app`'s context needs a staff token (401 otherwise), and each staff member
 * has CAT_RATE_LIMIT_ADMIN requests a minute over the whole admin API (429 beyond).
 * In demo mode (CAT_DEMO_MODE) the staff side is read-only: a request of any method but GET,
 * HEAD and OPTIONS answers 403 demo_mode once its token is verified, before its route runs,
 * whichever route it is; a bad token is still a 401. Its OpenAPI description lists demo_mode.
 */
export async function staffOnly(app: FastifyInstance, options: StaffOnlyOptions = {}): Promise<void> {
  const { tokens } = app
  const readOnly = app.config.demoMode
  const license = options.license === 'exempt' || !app.hasDecorator('license') ? undefined : app.license
  await limitRoutes(app, { kind: 'admin', max: app.config.rateLimits.admin, what: 'admin API requests of this staff member' })
  if (!app.hasRequestDecorator('staff')) app.decorateRequest('staff', undefined)
  app.addHook('onRoute', (route) => {
    if (!changes(route.method)) return
    // A new object: routes may share one config; the OpenAPI plugin reads it when the document is built.
    const docs = route.config?.docs ?? {}
    route.config = { ...route.config, docs: { ...docs, errors: [...(docs.errors ?? []), 'demo_mode'] } }
  })
  app.addHook('onRequest', async (request) => {
    const claims = verifyBearer(tokens, request)
    request.staff = claims
    request.limitKey = `staff:${claims.sub}`
    if (readOnly && !READ_METHODS.has(request.method)) throw new AppError('demo_mode', 'This server runs in demo mode: the staff side is read-only; nothing was changed.')
    if (license !== undefined && (request.method === 'GET' || request.method === 'HEAD')) assertLicensed(license)
  })
}
