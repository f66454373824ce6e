import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AUDIENCES, type TokenClaims, type TokenVerifier } from './tokens.js'
import { limitRoutes } from '../limits/route-limits.js'

/** The admin token of a REST call: `Authorization: Bearer …`. Throws invalid_token. */
export function verifyBearer(tokens: TokenVerifier, request: FastifyRequest): TokenClaims {
  const header = request.headers.authorization
  const token = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined
  return tokens.verify(token, AUDIENCES.admin, request.ip)
}

/**
 * Every route of `app`'s context needs a staff token (401 otherwise), and each staff member
 * has CAT_RATE_LIMIT_ADMIN requests a minute over the whole admin API (429 beyond).
 */
export async function staffOnly(app: FastifyInstance): Promise<void> {
  const { tokens } = app
  await limitRoutes(app, { kind: 'admin', max: app.config.rateLimits.admin, what: 'admin API requests of this staff member' })
  app.addHook('onRequest', async (request) => {
    request.limitKey = `staff:${verifyBearer(tokens, request).sub}`
  })
}
