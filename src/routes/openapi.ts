import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { ERRORS, type ErrorCode } from '../errors/errors.js'

/**
 * What a route's OpenAPI description needs beyond its Fastify schema, for the document only
 * (plugins/openapi.ts merges it in; Fastify never sees it). Fastify serializes every JSON
 * answer with the route's response schema of its status, so answers that are not the route's
 * own JSON, or that must stay as they are sent, are described here: errors (sent by the error
 * handler), bodies that are not JSON, 204s and 304s, and bodies no schema should touch.
 */
export interface RouteDocs {
  /** Error codes the route answers besides `internal_error` and `unavailable`, which every route can. */
  errors?: readonly ErrorCode[]
  /** Responses by status: see noContent and text below. */
  responses?: Record<string, object>
  /** The request body when Fastify does not validate one (an OpenAPI Request Body Object). */
  requestBody?: object
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's OpenAPI description beyond its schema (routes/openapi.ts). */
    docs?: RouteDocs
  }
}

const RetryAfter = { 'Retry-After': { type: 'integer', description: 'Seconds to wait before retrying.' } }

/** The body of every error: `{"error":{"code","message"}}` (errors/errors.ts errorBody). */
export function errorSchema(codes: readonly ErrorCode[], options: Record<string, unknown> = {}) {
  return Type.Object(
    { error: Type.Object({ code: Type.String({ enum: [...codes] }), message: Type.String() }, { additionalProperties: false }) },
    { additionalProperties: false, ...options },
  )
}

/** The error responses of `codes`, one per status (403 may be consent_required or forbidden). */
export function errorResponses(codes: readonly ErrorCode[]): Record<string, object> {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of new Set(codes)) {
    const { status } = ERRORS[code]
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const responses: Record<string, object> = {}
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const description = list.map((code) => `\`${code}\`: ${ERRORS[code].message}`).join(' ')
    responses[String(status)] = errorSchema(list, { description, ...(status === 429 || status === 503 ? { headers: RetryAfter } : {}) })
  }
  return responses
}

/** A response without a body (204, 304, 101), with its headers. */
export function noContent(description: string, headers: Record<string, object> = {}): object {
  return { type: 'null', description, ...(Object.keys(headers).length > 0 ? { headers } : {}) }
}

/** A response whose body is not JSON: a string of `contentType`. */
export function text(description: string, contentType: string, headers: Record<string, object> = {}): object {
  return { description, content: { [contentType]: { schema: { type: 'string' } } }, ...(Object.keys(headers).length > 0 ? { headers } : {}) }
}

/** The admin REST API's: an admin bearer token; 401 without one, 429 past CAT_RATE_LIMIT_ADMIN. */
export const ADMIN_API = { tags: ['admin'], security: [{ adminBearer: [] }] }
export const ADMIN_API_ERRORS = ['invalid_token', 'rate_limited'] as const
/** An admin API read: also 402 license_required while the licence is neither active nor in grace. */
export const ADMIN_READ_ERRORS = [...ADMIN_API_ERRORS, 'license_required'] as const

/** A JavaScript asset (routes/static-asset.ts): 200 with its bytes, gzip when accepted, 304 on a matching ETag. */
export const javaScriptAssetResponses = {
  200: text('The script; gzip when Accept-Encoding allows it. Cacheable for five minutes.', 'application/javascript', {
    ETag: { type: 'string', description: 'A strong ETag of the bytes sent (the gzip its own).' },
  }),
  304: noContent('Not modified: If-None-Match matches the ETag.'),
}

/** GET /docs/openapi.json: this document, generated from the routes' schemas (plugins/openapi.ts). */
export async function openapiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/docs/openapi.json', {
    schema: { summary: 'This OpenAPI document', tags: ['docs'] },
    config: { docs: { responses: { 200: { description: 'The OpenAPI 3.1 document of every HTTP route.', content: { 'application/json': { schema: { type: 'object' } } } } } } },
  }, async () => app.swagger())
}
