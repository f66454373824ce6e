import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errorBody } from '../errors/errors.js'
import { errorSchema } from './openapi.js'

/** ms a backing service has to answer the readiness probe. */
const PROBE_TIMEOUT_MS = 2000

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * What readiness checks, each `ok` or what is wrong: the presence engine and the database
 * answer within PROBE_TIMEOUT_MS, the activity writer is not stalled, the instance is not
 * draining and not overloaded. /readyz answers it; the metrics' cat_ready reports it.
 */
export async function readinessChecks(app: FastifyInstance): Promise<Record<string, string>> {
  const checks: Record<string, string> = {}
  const probes: [string, () => Promise<void>][] = [
    [`presence (${app.presence.kind})`, () => app.presence.ping()],
    [`database (${app.activity.dialect})`, () => app.activity.ping()],
  ]
  await Promise.all(
    probes.map(async ([name, probe]) => {
      try {
        await withTimeout(probe(), PROBE_TIMEOUT_MS)
        checks[name] = 'ok'
      } catch {
        checks[name] = 'down'
      }
    }),
  )
  // The writer's own view, whatever the engine: a Redis and a database that both answer can
  // still leave it failing (its consumer group gone), and the activity log would stop unseen.
  checks.activityWriter = app.activityWriter.stalled ? 'stalled' : 'ok'
  if (app.draining) checks.instance = 'draining'
  // Shedding requests (plugins/pressure.ts): out of the balancer until it recovers.
  if (app.overloaded()) checks.load = 'overloaded'
  return checks
}

const Checks = Type.Record(Type.String(), Type.String(), { description: 'Each check, `ok` or what is wrong: `down`, `stalled`, `draining`, `overloaded`.' })

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    schema: {
      summary: 'Liveness: the process answers',
      tags: ['operations'],
      response: { 200: Type.Object({ status: Type.Literal('ok') }) },
    },
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: the presence engine and the database answer, the writer runs, the instance is neither draining nor overloaded',
      tags: ['operations'],
      response: {
        200: Type.Object({ status: Type.Literal('ok'), checks: Checks }),
        503: Type.Composite([errorSchema(['unavailable']), Type.Object({ checks: Checks })], { description: 'Not ready: the failing checks are named.', headers: { 'Retry-After': { type: 'integer' } } }),
      },
    },
  }, async (_request, reply) => {
    const checks = await readinessChecks(app)
    const failing = Object.entries(checks).filter(([, state]) => state !== 'ok').map(([name]) => name)
    void reply.header('Cache-Control', 'no-store')
    if (failing.length === 0) return { status: 'ok', checks }
    void reply.code(503).header('Retry-After', '5')
    return { ...errorBody('unavailable', `Not ready: ${failing.join(', ')}`), checks }
  })
}
