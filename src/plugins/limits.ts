import fp from 'fastify-plugin'
import { createAuthFailures } from '../limits/auth-failures.js'
import { createHeartbeatLimit } from '../limits/heartbeat-limit.js'
import { reasonOf } from '../log/logger.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The per-contact limit on heartbeats: check() throws 429, or resolves when it must ask Redis. */
    heartbeatLimit: { check(contactId: string): Promise<void> | undefined }
  }
}

/**
 * The limits the routes cannot take from @fastify/rate-limit: heartbeats per contact (the hot
 * path: counted beside the contact's tokens, in Redis only past a tenth of the limit) and
 * requests that fail authentication per address (checked inside the token verifier, before
 * any HMAC). Consent and the admin API use @fastify/rate-limit (routes/rate-limits.ts).
 */
export const limitsPlugin = fp(async (app) => {
  const { config, metrics, now } = app
  const shared = app.sharedCounters
  let sharedErrorLogged = false
  app.tokens.useFailureGuard(createAuthFailures({
    limit: config.rateLimits.authFailures,
    shared,
    now,
    onRefused: () => metrics.rateLimited('auth').inc(),
    onSharedError: (error) => {
      if (sharedErrorLogged) return
      sharedErrorLogged = true
      app.log.warn({ reason: reasonOf(error) }, 'authentication failures could not be counted in Redis; each instance counts its own')
    },
  }))
  app.decorate('heartbeatLimit', createHeartbeatLimit({
    limit: config.rateLimits.heartbeats,
    contacts: app.clientContacts,
    shared,
    now,
    onRefused: () => metrics.rateLimited('heartbeat').inc(),
  }))
}, { name: 'limits', dependencies: ['core', 'shared-state', 'metrics'] })
