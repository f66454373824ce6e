import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { KeyObject } from 'node:crypto'
import { DOMAIN_PATTERN, LICENSE_KEY_PATTERN, signLease, type LeaseStatus } from '../../src/license/lease.js'
import type { KeyStore } from './key-store.js'

export interface LicenseServerOptions {
  store: KeyStore
  /** The vendor's Ed25519 private key: every lease is signed with it. */
  privateKey: KeyObject
  now?: () => number
  logger?: FastifyServerOptions['logger']
}

interface ActivateBody {
  key: string
  domain: string
  instanceId: string
}

const ActivateSchema = {
  type: 'object',
  required: ['key', 'domain', 'instanceId'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', pattern: LICENSE_KEY_PATTERN.source },
    domain: { type: 'string', maxLength: 253, pattern: DOMAIN_PATTERN.source },
    instanceId: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const

/** The status of `key` for `domain` at `at`: revoked first, then the binding, then the term. */
function statusOf(row: { revokedAt: number | null; domains: string[]; validUntil: number }, domain: string, at: number): LeaseStatus {
  if (row.revokedAt !== null) return 'revoked'
  if (!row.domains.includes(domain)) return 'domain_mismatch'
  return at >= row.validUntil ? 'expired' : 'active'
}

/**
 * The licence server (docs/licensing.md): POST /v1/activate answers a signed lease for a key
 * and a domain, whatever the answer is, so an install can trust a refusal as much as a grant.
 * Keys never reach its log (only their last four characters).
 */
export function buildLicenseServer({ store, privateKey, now = Date.now, logger = false }: LicenseServerOptions): FastifyInstance {
  const app = Fastify({ logger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 4096 })

  app.setErrorHandler((error: { validation?: unknown; statusCode?: number; message: string }, request, reply) => {
    if (error.validation !== undefined) return reply.code(400).send({ error: { code: 'invalid_request', message: error.message } })
    const status = error.statusCode ?? 500
    if (status >= 500) request.log.error({ err: error }, 'licence server: request failed')
    const code = status >= 500 ? 'internal_error' : status === 413 ? 'too_large' : 'invalid_request'
    return reply.code(status).send({ error: { code, message: status >= 500 ? 'An internal error occurred.' : error.message } })
  })
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: { code: 'not_found', message: 'No such route: POST /v1/activate is the licence API.' } }))

  app.get('/healthz', async () => ({ ok: true }))

  app.post<{ Body: ActivateBody }>('/v1/activate', { schema: { body: ActivateSchema } }, async (request, reply) => {
    const { key, instanceId } = request.body
    const domain = request.body.domain.toLowerCase()
    const at = now()
    const row = store.find(key)
    if (row === undefined) {
      request.log.info({ keyHint: key.slice(-4), domain }, 'licence server: unknown key')
      return reply.code(404).send({
        error: { code: 'unknown_key', message: 'This licence key is not known to this licence server.' },
        ...signLease(privateKey, { v: 1, key, domain, status: 'unknown', validUntil: 0, issuedAt: at }),
      })
    }
    const status = statusOf(row, domain, at)
    store.recordActivation(key, domain, instanceId, status, at)
    request.log.info({ keyHint: key.slice(-4), domain, status }, 'licence server: lease issued')
    return signLease(privateKey, { v: 1, key, domain, status, validUntil: row.validUntil, issuedAt: at })
  })

  return app
}
