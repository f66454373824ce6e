import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
// The parser Fastify's router (find-my-way) gives a route its query with.
import { parse } from 'fast-querystring'
import type { TSchema } from '@sinclair/typebox'
import { AUDIENCES, type TokenClaims } from '../auth/tokens.js'
import type { Heartbeat, HeartbeatEvent, HeartbeatResult } from '../presence/presence-engine.js'

/** The path and query string's start of every heartbeat the lane takes. */
const LANE_PREFIX = '/cat_heartbeat?'

/** Where a request the lane took and failed carries its error to the route, which answers it. */
export const HANDED = Symbol('the heartbeat lane handed this request over')
export type Handed = IncomingMessage & { [HANDED]?: { error: unknown } }

/** What the lane shares with the route: the same services, and the route's own steps. */
export interface HeartbeatLaneOptions {
  /** The route's query schema: the lane validates with the validator Fastify compiled from it. */
  schema: TSchema
  /** The beat a valid query of a verified contact stands for. */
  beatOf(claims: TokenClaims, query: LaneQuery): Heartbeat
  /** The route's error when the engine did not store the beat; undefined when it did. */
  refusal(result: HeartbeatResult): Error | undefined
  /** CAT-Interval's text, a live setting. */
  interval(): string
  /** Counts a heartbeat answered 204 and its time (ms), as the route counts its answers. */
  counted(event: HeartbeatEvent, ms: number): void
}

/** The query once the validator has checked it and filled in the defaults. */
export interface LaneQuery {
  token?: string
  sid: string
  path: string
  title: string
  event: HeartbeatEvent
}

/**
 * The usual heartbeat, answered below Fastify's router (an HttpLane, errors/edge-errors.ts): a
 * GET of /cat_heartbeat whose query is valid, with a token this instance verified before and a
 * contact it knows has consented, is recorded and answered 204 here, with the route's headers.
 * Fastify's work for a request (routing, its request and reply objects, the hook runner) is
 * about as much CPU as the heartbeat's own; here it is left out (bench/README.md, "Honest
 * ratios").
 *
 * Everything else goes to Fastify as it came, before the lane has done anything: a query that
 * does not validate, a token to verify, a consent to look up, Global Privacy Control, overload
 * (the route's onRequest hook sheds it). A heartbeat the lane took that then fails (a rate
 * limit, too many tabs, Redis down) goes to Fastify with its error, which the route answers as
 * its own: the lane answers only 204s.
 *
 * The lane stands in for the route's hooks, so it runs only while the route has none but the
 * overload hook (test/routes/heartbeat-lane.test.ts lists them): with CAT_ALLOWED_ORIGINS set,
 * CORS adds a hook to every route, and every heartbeat goes through Fastify.
 */
export function heartbeatLane(app: FastifyInstance, options: HeartbeatLaneOptions): void {
  const { tokens, consent, presence, heartbeatLimit } = app
  const { beatOf, refusal, interval, counted } = options
  if (app.config.allowedOrigins.length > 0) return
  const handOver = (taken: Taken, error: unknown): void => {
    ;(taken.request as Handed)[HANDED] = { error }
    taken.fastify(taken.request, taken.response)
  }
  const answer = (taken: Taken, result: HeartbeatResult): void => {
    const refused = refusal(result)
    if (refused !== undefined) {
      handOver(taken, refused)
      return
    }
    // As the route's reply sends it: Fastify's header names are lower case, and a 204 has no length.
    taken.response.writeHead(204, { 'cat-interval': interval(), 'cache-control': 'no-store' })
    taken.response.end()
    counted(taken.event, performance.now() - taken.started)
  }
  // Added once the app is ready, with the validator Fastify compiled for the route (compilers
  // cache by schema): the same checks, coercions and defaults. No request is served before.
  app.addHook('onReady', async () => {
    const compile = app.validatorCompiler
    if (compile === undefined) return
    const validate = compile({ schema: options.schema, method: 'GET', url: '/cat_heartbeat', httpPart: 'querystring' }) as (query: unknown) => boolean
    app.addHttpLane((request: IncomingMessage, response: ServerResponse, fastify) => {
      const url = request.url as string
      if (request.method !== 'GET' || !url.startsWith(LANE_PREFIX)) return false
      if (request.headers['sec-gpc'] === '1' || app.overloaded()) return false
      const started = performance.now()
      const query = parse(url.slice(LANE_PREFIX.length)) as LaneQuery
      if (!validate(query) || query.token === undefined) return false
      const claims = tokens.recall(query.token, AUDIENCES.client)
      if (claims === undefined || !consent.knownGranted(claims.sub)) return false
      // The request's state travels as an object, and the callbacks below are unnamed: no
      // function is named per request (a named closure costs a defineProperty where the
      // source runs through tsx, as the bench's servers and tests do).
      const taken: Taken = { request, response, fastify, event: query.event, started }
      let limited: Promise<void> | undefined
      try {
        limited = heartbeatLimit.check(claims.sub)
      } catch (error) {
        handOver(taken, error)
        return true
      }
      const beat = beatOf(claims, query)
      ;(limited === undefined ? presence.heartbeat(beat) : limited.then(() => presence.heartbeat(beat))).then(
        (result) => answer(taken, result),
        (error: unknown) => handOver(taken, error),
      )
      return true
    })
  })
}

/** A heartbeat the lane took, until it is answered or handed over. */
interface Taken {
  request: IncomingMessage
  response: ServerResponse
  /** Hands the request to Fastify. */
  fastify(request: IncomingMessage, response: ServerResponse): void
  event: HeartbeatEvent
  /** performance.now() when the lane took it. */
  started: number
}
