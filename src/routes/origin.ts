import type { FastifyRequest } from 'fastify'

/** Same-origin requests are always allowed; others only when listed in CAT_ALLOWED_ORIGINS. */
export function isAllowedOrigin(request: FastifyRequest, origin: string, allowed: readonly string[]): boolean {
  return origin === `${request.protocol}://${request.host}` || allowed.includes(origin)
}
