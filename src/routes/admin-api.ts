import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { staffOnly, staffVisibility } from '../auth/admin-auth.js'
import { visibleOnly } from '../auth/visibility.js'
import { ADMIN_API, ADMIN_READ_ERRORS } from './openapi.js'

export const PresenceSchema = Type.Object({
  contactId: Type.String(),
  clientId: Type.String(),
  name: Type.String(),
  company: Type.String(),
  path: Type.String(),
  title: Type.String(),
  state: Type.Union([Type.Literal('active'), Type.Literal('idle')]),
  since: Type.Number(),
  lastSeen: Type.Number(),
  tabs: Type.Integer(),
})

export async function adminApiRoutes(app: FastifyInstance): Promise<void> {
  const { presence, now } = app
  await staffOnly(app)

  app.get('/admin/api/online', {
    schema: { ...ADMIN_API, summary: 'Who is online now', response: { 200: Type.Object({ at: Type.Number(), online: Type.Array(PresenceSchema) }) } },
    config: { docs: { errors: ADMIN_READ_ERRORS } },
  }, async (request, reply) => {
    const snapshot = await presence.snapshot()
    void reply.header('Cache-Control', 'no-store')
    return { at: now(), online: visibleOnly(snapshot.online, staffVisibility(request), (p) => p.clientId) }
  })
}
