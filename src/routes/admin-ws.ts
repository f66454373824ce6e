import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Visibility } from '../auth/visibility.js'
import { Type, type Static } from '@sinclair/typebox'
import { AppError, CLOSE_CODES } from '../errors/errors.js'
import { AUDIENCES, MAX_ADMIN_TOKEN_LENGTH } from '../auth/tokens.js'
import { isAllowedOrigin } from './origin.js'
import { assertLicensed } from '../license/license-gate.js'
import { noContent } from './openapi.js'

const WsQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: MAX_ADMIN_TOKEN_LENGTH })) }, { additionalProperties: true })

export async function adminWsRoutes(app: FastifyInstance): Promise<void> {
  const { config, tokens, hub, license } = app
  // A licence that stops serving the staff side closes the dashboards already open: they
  // reconnect, get the 402 and show the licence.
  const stopWatching = license.onChange((licensed) => {
    if (licensed) return
    const { code, reason } = CLOSE_CODES.licenseRequired
    for (const client of app.websocketServer.clients) client.close(code, reason)
  })
  app.addHook('onClose', async () => stopWatching())
  /** The clients each upgrading request's token sees, from its verification to its socket. */
  const visibilities = new WeakMap<FastifyRequest, Visibility>()
  app.get<{ Querystring: Static<typeof WsQuery> }>('/admin/ws', {
    websocket: true,
    schema: {
      summary: "The dashboards' WebSocket: a snapshot of who is online, then diffs",
      description: 'An HTTP upgrade (Connection: Upgrade, Upgrade: websocket). A missing or bad token is refused with 401, a foreign Origin with 403, a licence neither active nor in grace with 402, all before the upgrade. Messages and close codes: see the README, "Admin side".',
      tags: ['admin'],
      security: [{ adminQueryToken: [] }],
      querystring: WsQuery,
    },
    config: {
      docs: {
        errors: ['invalid_request', 'invalid_token', 'license_required', 'forbidden', 'rate_limited'],
        responses: { 101: noContent('Switching Protocols: the WebSocket is open.') },
      },
    },
    // Hooks run before the upgrade (fastify-websocket, "Using hooks"): a refused dashboard
    // gets a plain HTTP 401/403 with a JSON body and never a socket.
    preValidation: async (request) => {
      const origin = request.headers.origin
      if (origin !== undefined && !isAllowedOrigin(request, origin, config.allowedOrigins)) {
        throw new AppError('forbidden', `Origin ${origin} is not allowed`)
      }
      if (app.draining) throw new AppError('unavailable', 'This instance is draining.', { retryAfterS: 1 })
      const claims = tokens.verify((request.query as { token?: string }).token, AUDIENCES.admin, request.ip)
      assertLicensed(license)
      if (claims.visibility !== undefined) visibilities.set(request, claims.visibility)
    },
  }, (socket, request) => {
    const visibility = visibilities.get(request)
    visibilities.delete(request)
    // Never reached without a verified token; were it, the socket would see nobody rather than everybody.
    if (visibility === undefined) return socket.close(CLOSE_CODES.policyViolation.code, CLOSE_CODES.policyViolation.reason)
    hub.add(socket, visibility)
  })
}
