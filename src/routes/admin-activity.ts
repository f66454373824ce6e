import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { requireAdmin, staffOnly, staffVisibility } from '../auth/admin-auth.js'
import { visibleOnly } from '../auth/visibility.js'
import { PresenceSchema } from './admin-api.js'
import { AppError } from '../errors/errors.js'
import { eraseContact } from '../activity/erase-contact.js'
import { bucketPoints, onlineAt, STATS_RANGES, type StatsRange } from '../activity/online-stats.js'
import { ADMIN_API, ADMIN_API_ERRORS, ADMIN_READ_ERRORS, noContent } from './openapi.js'

const Id = Type.String({ minLength: 1, maxLength: 128 })
const ActivityQuerySchema = Type.Object(
  {
    from: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch' })),
    to: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch' })),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
)
type ActivityQuerystring = Static<typeof ActivityQuerySchema>

const PageSchema = Type.Object({ path: Type.String(), title: Type.String(), startedAt: Type.Number(), durationS: Type.Integer() })
const SessionSchema = Type.Object({
  id: Type.String(),
  contactId: Type.String(),
  clientId: Type.String(),
  startedAt: Type.Number(),
  endedAt: Type.Union([Type.Number(), Type.Null()]),
  durationS: Type.Integer(),
  endReason: Type.Union([Type.String(), Type.Null()]),
  pages: Type.Array(PageSchema),
})
const ActivityResponse = Type.Object({ sessions: Type.Array(SessionSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) })
/** Documentation only: the export is sent as stored, so no schema trims it. */
const ExportResponse = Type.Object(
  {
    exportedAt: Type.Number(),
    contactId: Type.String(),
    presence: Type.Union([PresenceSchema, Type.Null()]),
    sessions: Type.Array(Type.Object({}, { additionalProperties: true })),
    events: Type.Array(Type.Object({}, { additionalProperties: true })),
    consents: Type.Array(Type.Object({}, { additionalProperties: true })),
  },
  { description: 'The export, with Content-Disposition: attachment.', headers: { 'Content-Disposition': { type: 'string' } } },
)

export async function adminActivityRoutes(app: FastifyInstance): Promise<void> {
  const { activity, presence, now } = app
  await staffOnly(app)

  const query = (q: ActivityQuerystring) => {
    const to = q.to ?? now() + 1
    const from = q.from ?? 0
    if (from > to) throw new AppError('invalid_request', 'from must not be after to')
    return { from, to, limit: q.limit, cursor: q.cursor }
  }
  /**
   * The clients of `contactId` the staff member of `request` sees: undefined when they see
   * every client; a 404 when they see none of the contact's, as for a contact that does not exist.
   */
  const seenClientsOf = async (request: FastifyRequest, contactId: string): Promise<readonly string[] | undefined> => {
    const visibility = staffVisibility(request)
    if (visibility.all) return undefined
    const seen = (await activity.contactClients(contactId)).filter((clientId) => visibility.sees(clientId))
    if (seen.length === 0) throw new AppError('not_found', `No contact ${contactId} among the clients this token sees.`)
    return seen
  }
  const activitySchema = { ...ADMIN_API, querystring: ActivityQuerySchema, response: { 200: ActivityResponse } }
  const config = { docs: { errors: ['invalid_request', ...ADMIN_READ_ERRORS] as const } }
  const contactConfig = { docs: { errors: ['invalid_request', ...ADMIN_READ_ERRORS, 'not_found'] as const } }

  app.get<{ Params: { contactId: string }; Querystring: ActivityQuerystring }>('/admin/api/contacts/:contactId/activity', {
    schema: { ...activitySchema, summary: "A contact's sessions, newest first, paged", params: Type.Object({ contactId: Id }) },
    config: contactConfig,
  }, async (request) => {
    const { contactId } = request.params
    return activity.contactActivity(contactId, query(request.query), await seenClientsOf(request, contactId))
  })

  app.get<{ Params: { clientId: string }; Querystring: ActivityQuerystring }>('/admin/api/clients/:clientId/activity', {
    schema: { ...activitySchema, summary: "A client company's sessions, newest first, paged", params: Type.Object({ clientId: Id }) },
    config: contactConfig,
  }, async (request) => {
    const { clientId } = request.params
    if (!staffVisibility(request).sees(clientId)) throw new AppError('not_found', `No client ${clientId} among the clients this token sees.`)
    return activity.clientActivity(clientId, query(request.query))
  })

  app.get<{ Querystring: { range: StatsRange } }>('/admin/api/stats/online', {
    config,
    schema: {
      ...ADMIN_API,
      summary: 'The online count over the last hour, day or week',
      querystring: Type.Object({ range: Type.Union(Object.keys(STATS_RANGES).map((r) => Type.Literal(r)), { default: '1h' }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ points: Type.Array(Type.Object({ t: Type.Number(), online: Type.Integer() })) }) },
    },
  }, async (request) => {
    const { spanMs, bucketMs } = STATS_RANGES[request.query.range]
    const to = now()
    const from = Math.floor((to - spanMs) / bucketMs) * bucketMs
    const samples = await activity.onlineSamples(from, to + 1)
    const visibility = staffVisibility(request)
    if (visibility.all) return { points: bucketPoints(samples, bucketMs) }
    // The same instants, counted over the visible clients' sessions.
    const spans = await activity.sessionSpans([...(visibility.clients ?? [])], from, to + 1)
    return { points: bucketPoints(onlineAt(samples.map((sample) => sample.t), spans), bucketMs) }
  })

  app.get<{ Params: { contactId: string } }>('/admin/api/contacts/:contactId/export', {
    schema: { ...ADMIN_API, summary: 'Everything stored about a contact, as a download', params: Type.Object({ contactId: Id }) },
    config: { docs: { ...contactConfig.docs, responses: { 200: ExportResponse } } },
  }, async (request, reply) => {
    const { contactId } = request.params
    const clients = await seenClientsOf(request, contactId)
    const [stored, snapshot] = await Promise.all([activity.exportContact(contactId, clients), presence.snapshot()])
    void reply.header('Content-Disposition', `attachment; filename="contact-${encodeURIComponent(contactId)}.json"`)
    return {
      exportedAt: now(),
      contactId,
      presence: visibleOnly(snapshot.online, staffVisibility(request), (p) => p.clientId).find((online) => online.contactId === contactId) ?? null,
      sessions: stored.sessions,
      events: stored.events,
      consents: stored.consents,
    }
  })

  app.delete<{ Params: { contactId: string } }>('/admin/api/contacts/:contactId', {
    schema: {
      ...ADMIN_API,
      summary: "Erases a contact: ends its presence, deletes its rows and its consent ledger",
      params: Type.Object({ contactId: Id }),
    },
    config: { docs: { errors: ['invalid_request', ...ADMIN_API_ERRORS, 'forbidden', 'not_found'] as const, responses: { 204: noContent('Erased.') } } },
  }, async (request, reply) => {
    requireAdmin(request, 'Erasing a contact')
    await seenClientsOf(request, request.params.contactId)
    await eraseContact({ store: activity, engine: presence, eventLog: app.eventLog, consentBus: app.consentBus, now }, request.params.contactId)
    request.log.info({ contactId: request.params.contactId }, 'contact erased')
    void reply.code(204).send()
  })
}
