import type { FastifyRequest } from 'fastify'
import { AUDIENCES, type TokenClaims, type TokenVerifier } from './tokens.js'

/** The admin token of a REST call: `Authorization: Bearer …`. Throws invalid_token. */
export function verifyBearer(tokens: TokenVerifier, request: FastifyRequest): TokenClaims {
  const header = request.headers.authorization
  const token = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined
  return tokens.verify(token, AUDIENCES.admin)
}
