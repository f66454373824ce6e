import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { requireAdmin, staffOnly } from '../auth/admin-auth.js'
import { AppError } from '../errors/errors.js'
import { LICENSE_KEY_PATTERN } from '../license/lease.js'
import { LICENSE_STATES } from '../license/license-state.js'
import { ADMIN_API, ADMIN_API_ERRORS } from './openapi.js'

const Time = Type.Union([Type.Number(), Type.Null()], { description: 'ms since the epoch, or null' })
export const LicenseViewSchema = Type.Object({
  enabled: Type.Boolean({ description: 'false: licensing is off (CAT_LICENSE_SERVER_URL unset); state is then unlicensed and nothing is restricted' }),
  state: Type.String({ enum: [...LICENSE_STATES] }),
  domain: Type.Union([Type.String(), Type.Null()], { description: "the licensed domain, CAT_PUBLIC_URL's host" }),
  validUntil: Time,
  graceUntil: Time,
  checkedAt: Time,
  daysLeft: Type.Union([Type.Integer(), Type.Null()], { description: 'grace: whole days left, rounded up' }),
  keyHint: Type.Union([Type.String(), Type.Null()], { description: "the key's last four characters" }),
  message: Type.String({ description: 'the state in one sentence, with what to do' }),
})

// No pattern in the schema: a malformed key gets the one-line message below rather than ajv's.
const ActivateBody = Type.Object({ key: Type.String({ maxLength: 512 }) }, { additionalProperties: false })

/**
 * GET and POST /admin/api/license: reachable in every licence state (they are how the
 * licence is put right), so their context is exempt from the 402 gate.
 */
export async function adminLicenseRoutes(app: FastifyInstance): Promise<void> {
  const { license } = app
  await staffOnly(app, { license: 'exempt' })

  app.get('/admin/api/license', {
    schema: {
      ...ADMIN_API,
      summary: "The install's licence state",
      description: 'Answered in every state, 402 never. See docs/licensing.md for the states.',
      response: { 200: LicenseViewSchema },
    },
    config: { docs: { errors: ADMIN_API_ERRORS } },
  }, async (_request, reply) => {
    void reply.header('Cache-Control', 'no-store')
    return license.view
  })

  app.post<{ Body: Static<typeof ActivateBody> }>('/admin/api/license', {
    schema: {
      ...ADMIN_API,
      summary: 'Activate a licence key',
      description: "Needs the admin role. Asks the licence server for a lease of the key for this install's domain and stores it for every instance; answers the resulting state (which may be invalid, expired or domain_mismatch). 503 when the licence server cannot be reached (nothing changes then).",
      body: ActivateBody,
      response: { 200: LicenseViewSchema },
    },
    config: { docs: { errors: ['invalid_request', 'forbidden', 'unavailable', ...ADMIN_API_ERRORS] } },
    // Before validation: a staff token is refused for its role whatever its body.
    preValidation: async (request) => requireAdmin(request, 'Activating a licence'),
  }, async (request, reply) => {
    const key = request.body.key.trim()
    if (!LICENSE_KEY_PATTERN.test(key)) throw new AppError('invalid_request', 'key: expected 8-128 characters of A-Z a-z 0-9 _ - (the licence key as the vendor sent it)')
    const view = await license.activate(key)
    request.log.info({ state: view.state, by: request.staff?.sub }, 'licence: activation by staff')
    void reply.header('Cache-Control', 'no-store')
    return view
  })
}
