import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { AppError } from '../errors/errors.js'
import { AUDIENCES, MAX_TOKEN_LENGTH, type TokenClaims } from '../auth/tokens.js'
import { HEARTBEAT_EVENTS, type Heartbeat, type HeartbeatEvent, type HeartbeatResult } from '../presence/presence-engine.js'
import { heartbeatOutcome } from '../metrics/metrics.js'
import { noContent, type RouteDocs } from './openapi.js'
import { HANDED, heartbeatLane, type Handed, type LaneQuery } from './heartbeat-lane.js'

export const MAX_PATH_LENGTH = 2048
export const MAX_TITLE_LENGTH = 512

const HeartbeatQuery = Type.Object(
  {
    // Checked by the verifier, so a missing token is a 401, not a 400.
    token: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LENGTH })),
    sid: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$', description: "the tab's random id, 8-64 of A-Z a-z 0-9 _ -" }),
    path: Type.String({ minLength: 1, maxLength: MAX_PATH_LENGTH, pattern: '^/', default: '/' }),
    title: Type.String({ maxLength: MAX_TITLE_LENGTH, default: '' }),
    event: Type.Union(HEARTBEAT_EVENTS.map((e) => Type.Literal(e)), { default: 'beat' }),
  },
  { additionalProperties: true },
)
type HeartbeatQuery = Static<typeof HeartbeatQuery>

/** sendBeacon posts text/plain; its body may repeat the parameters as JSON or a form. */
function bodyParams(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {}
  if (typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>
  if (typeof body !== 'string') throw new AppError('invalid_request', 'body must be a JSON object or a form')
  const text = body.trim()
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>
    } catch {
      // fall through to the error below
    }
    throw new AppError('invalid_request', 'body is not valid JSON')
  }
  return Object.fromEntries(new URLSearchParams(text))
}

export async function heartbeatRoutes(app: FastifyInstance): Promise<void> {
  const { config, tokens, presence, consent, metrics, heartbeatLimit, settings } = app
  // The live setting, kept as the header's text: a heartbeat reads a variable, nothing more.
  let interval = String(settings.current.heartbeatIntervalS)
  const stopFollowing = settings.onChange((next) => {
    interval = String(next.heartbeatIntervalS)
  })
  app.addHook('onClose', async () => stopFollowing())
  const events = new Set<string>(HEARTBEAT_EVENTS)
  /**
   * Every answer counted by event and outcome, and timed (cat_heartbeats_total,
   * cat_heartbeat_duration_seconds): a 204 where the handler or the lane sends it, an error in this
   * context's error handler, after the app's has answered. No onResponse hook: a hook costs
   * every heartbeat more than the counting itself. An event that did not validate is `unknown`.
   */
  const counted = (event: HeartbeatEvent | 'unknown', status: number, ms: number): void => {
    metrics.heartbeats(event, heartbeatOutcome(status)).inc()
    metrics.heartbeatDuration.observe(ms / 1000)
  }
  const count = (request: FastifyRequest, reply: FastifyReply): void => {
    if (!metrics.enabled) return
    // Absent: the route's default (an answer before validation has not applied it yet).
    const event = (request.query as { event?: unknown } | undefined)?.event ?? 'beat'
    counted(typeof event === 'string' && events.has(event) ? (event as HeartbeatEvent) : 'unknown', reply.statusCode, reply.elapsedTime)
  }
  if (metrics.enabled) {
    const answerError = app.errorHandler
    app.setErrorHandler(function countedError(error, request, reply) {
      answerError.call(this, error, request, reply)
      count(request, reply)
    })
  }

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8192 }, (_req, body, done) => {
    done(null, body)
  })

  /** The beat a valid query of a verified contact stands for. */
  const beatOf = (claims: TokenClaims, query: LaneQuery): Heartbeat => ({
    contactId: claims.sub,
    clientId: claims.clientId as string,
    name: claims.name ?? '',
    company: claims.company ?? '',
    sid: query.sid,
    path: query.path,
    title: query.title,
    event: query.event,
  })
  /** Why the engine did not store the beat, if it did not: the contact's other tabs keep beating; this one may get in once one of them closes. */
  const refusal = (result: HeartbeatResult): AppError | undefined =>
    result === 'refused' ? new AppError('rate_limited', `This contact already has ${config.maxTabsPerContact} tabs open, the most allowed; this tab is not tracked.`, { retryAfterS: settings.current.heartbeatIntervalS }) : undefined

  const handler = async (request: FastifyRequest<{ Querystring: HeartbeatQuery }>, reply: FastifyReply): Promise<void> => {
    // The lane took this heartbeat and failed it: the error is answered here, as every error is.
    const handed = (request.raw as Handed)[HANDED]
    if (handed !== undefined) throw handed.error
    const { token } = request.query
    const claims = tokens.verify(token, AUDIENCES.client, request.ip)
    const limited = heartbeatLimit.check(claims.sub)
    if (limited !== undefined) await limited
    // The server, not the snippet, enforces consent; Global Privacy Control is a refusal.
    // knownGranted first: the usual answer, without an await.
    if (request.headers['sec-gpc'] === '1' || (!consent.knownGranted(claims.sub) && !(await consent.isGranted(claims.sub)))) {
      throw new AppError('consent_required', 'The contact has not granted consent to activity tracking; nothing was stored.')
    }
    const refused = refusal(await presence.heartbeat(beatOf(claims, request.query)))
    if (refused !== undefined) throw refused
    void reply.header('CAT-Interval', interval).header('Cache-Control', 'no-store').code(204).send()
    count(request, reply)
  }

  // summary, description, tags and config.docs are documentation only (routes/openapi.ts):
  // no response schema, so a heartbeat does no more work than before.
  const schema = {
    summary: "A tab's heartbeat",
    description: 'Needs the contact\'s consent (`Sec-GPC: 1` is a refusal). The answer names the interval to the next beat.',
    tags: ['portal'],
    querystring: HeartbeatQuery,
  }
  const docs: RouteDocs = {
    errors: ['invalid_request', 'invalid_token', 'consent_required', 'rate_limited'],
    responses: { 204: noContent('Recorded.', { 'CAT-Interval': { type: 'integer', description: 'Seconds to the next beat.' } }) },
  }
  const postBody = Type.Object({ sid: Type.Optional(Type.String()), path: Type.Optional(Type.String()), title: Type.Optional(Type.String()), event: Type.Optional(Type.String()), token: Type.Optional(Type.String()) }, { description: 'The query parameters, any of them, repeated in the body; the body wins.' })
  app.get('/cat_heartbeat', { schema, config: { docs } }, handler)
  heartbeatLane(app, {
    schema: HeartbeatQuery,
    beatOf,
    refusal,
    interval: () => interval,
    counted: (event, ms) => {
      if (metrics.enabled) counted(event, 204, ms)
    },
  })
  app.post('/cat_heartbeat', {
    schema: { ...schema, summary: "A tab's heartbeat, as navigator.sendBeacon sends it", description: `${schema.description} Parameters may be in the query string or in the body, a JSON object (as text/plain or application/json) or a form.` },
    config: {
      docs: {
        ...docs,
        errors: [...(docs.errors ?? []), 'too_large'],
        requestBody: { required: false, content: { 'text/plain': { schema: postBody }, 'application/json': { schema: postBody }, 'application/x-www-form-urlencoded': { schema: postBody } } },
      },
    },
    bodyLimit: 8192,
    // Runs before validation: body fields join the query string and are checked with it.
    preValidation: async (request) => {
      const merged = { ...(request.query as Record<string, unknown>), ...bodyParams(request.body) }
      ;(request as { query: unknown }).query = merged
    },
  }, handler)
}
