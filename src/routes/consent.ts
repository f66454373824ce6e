import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { AppError } from '../errors/errors.js'
import { limitRoutes } from '../limits/route-limits.js'
import { AUDIENCES, MAX_TOKEN_LENGTH } from '../auth/tokens.js'
import { truncateIp } from '../log/logger.js'
import { CONSENT_DECISIONS } from '../consent/consent-service.js'
import { noContent } from './openapi.js'

const ConsentBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: MAX_TOKEN_LENGTH }),
    decision: Type.Union(CONSENT_DECISIONS.map((d) => Type.Literal(d))),
    version: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
    locale: Type.String({ minLength: 2, maxLength: 16, pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$' }),
  },
  { additionalProperties: true },
)

/** text/plain bodies (what a portal page can send without a preflight) carry JSON too. */
function parseBody(body: unknown): unknown {
  if (typeof body !== 'string') return body
  try {
    return JSON.parse(body)
  } catch {
    throw new AppError('invalid_request', 'body is not valid JSON')
  }
}

export async function consentRoutes(app: FastifyInstance): Promise<void> {
  const { tokens, consent, now } = app
  // A contact's decisions: CAT_RATE_LIMIT_CONSENT a minute (429 beyond), counted once its token is verified.
  await limitRoutes(app, { kind: 'consent', max: app.config.rateLimits.consent, what: 'consent decisions of this contact' })

  app.post<{ Body: Static<typeof ConsentBody> }>('/clients/cat_consent', {
    bodyLimit: 8192,
    schema: {
      summary: "Records a contact's consent decision",
      description: 'The body is JSON, sent as application/json or as text/plain (no CORS preflight). A `granted` sent with `Sec-GPC: 1` is recorded as `denied`.',
      tags: ['portal'],
      body: ConsentBody,
      consumes: ['application/json', 'text/plain'],
    },
    config: { docs: { errors: ['invalid_request', 'invalid_token', 'too_large', 'rate_limited'], responses: { 204: noContent('Recorded.') } } },
    preValidation: async (request) => {
      ;(request as { body: unknown }).body = parseBody(request.body)
    },
    preHandler: async (request) => {
      request.limitKey = `contact:${tokens.verify(request.body.token, AUDIENCES.client, request.ip).sub}`
    },
  }, async (request, reply) => {
    const { token, decision, version, locale } = request.body
    const claims = tokens.verify(token, AUDIENCES.client, request.ip)
    // Global Privacy Control is a refusal: a browser that sends it cannot grant by this route.
    const gpc = request.headers['sec-gpc'] === '1'
    await consent.record({
      contactId: claims.sub,
      clientId: claims.clientId as string,
      decision: gpc && decision === 'granted' ? 'denied' : decision,
      version,
      locale,
      at: now(),
      ip: truncateIp(request.ip),
      userAgent: String(request.headers['user-agent'] ?? '').slice(0, 512),
    })
    void reply.header('Cache-Control', 'no-store').code(204).send()
  })

  app.get<{ Querystring: { token?: string } }>('/clients/cat_consent', {
    schema: {
      summary: "The contact's consent decision in force",
      tags: ['portal'],
      querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LENGTH, description: 'the client token' })) }),
      response: {
        200: Type.Object({ decision: Type.String({ enum: [...CONSENT_DECISIONS] }), version: Type.String(), at: Type.Number({ description: 'ms since the epoch' }) }),
      },
    },
    config: { docs: { errors: ['invalid_request', 'invalid_token', 'not_found', 'rate_limited'] } },
  }, async (request, reply) => {
    const claims = tokens.verify(request.query.token, AUDIENCES.client, request.ip)
    const latest = await consent.latest(claims.sub)
    void reply.header('Cache-Control', 'no-store')
    if (latest === undefined) throw new AppError('not_found', 'No consent decision is recorded for this contact.')
    return { decision: latest.decision, version: latest.version, at: latest.at }
  })
}
