import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { requireAdmin, staffOnly } from '../auth/admin-auth.js'
import { ConfigError, LIVE_SETTINGS, LIVE_SETTING_NAMES, type LiveSettingName } from '../config/config.js'
import { AppError } from '../errors/errors.js'
import type { SettingsView } from '../settings/live-settings.js'
import { ADMIN_API, ADMIN_API_ERRORS } from './openapi.js'

const DESCRIPTIONS: Record<LiveSettingName, string> = {
  heartbeatIntervalS: 'Seconds between heartbeats, told to the snippet (CAT-Interval).',
  presenceTimeoutS: 'Seconds without a heartbeat after which a contact has left; above heartbeatIntervalS.',
  idleTimeoutS: 'Seconds a contact whose tabs are all hidden stays online; above heartbeatIntervalS.',
  diffIntervalMs: 'Milliseconds over which diffs to dashboards are coalesced.',
  retentionDays: 'Days of activity kept.',
}

const field = (name: LiveSettingName) => {
  const { env, minimum, maximum } = LIVE_SETTINGS[name]
  return Type.Integer({ minimum, maximum, description: `${DESCRIPTIONS[name]} Default: ${env}.` })
}

const Values = Object.fromEntries(LIVE_SETTING_NAMES.map((name) => [name, field(name)])) as Record<LiveSettingName, ReturnType<typeof field>>

const Source = Type.Union([Type.Literal('environment'), Type.Literal('saved')])

const SettingsResponse = Type.Object({
  ...Values,
  sources: Type.Object(
    Object.fromEntries(LIVE_SETTING_NAMES.map((name) => [name, Source])) as Record<LiveSettingName, typeof Source>,
    { description: "Where each value comes from: saved (in the dashboard or by PUT) or the environment's default." },
  ),
  updatedAt: Type.Union([Type.Number(), Type.Null()], { description: 'When the settings were last saved, ms; null when never.' }),
})

const SettingsBody = Type.Object(
  Object.fromEntries(LIVE_SETTING_NAMES.map((name) => [name, Type.Optional(Type.Union([field(name), Type.Null()]))])),
  {
    additionalProperties: false,
    description: 'Any of the five; a field left out keeps its value, null returns it to the environment\'s default. Checked as the environment is, the result as a whole.',
  },
)

const answer = (view: SettingsView) => ({ ...view.values, sources: view.sources, updatedAt: view.updatedAt })

/**
 * GET and PUT /admin/api/settings: the live settings, read and changed by an admin (role
 * `admin`; a `staff` token gets 403). A save applies here at once and on every instance within
 * seconds (settings/live-settings.ts).
 */
export async function settingsRoutes(app: FastifyInstance): Promise<void> {
  const { settings } = app
  await staffOnly(app)
  const errors = [...ADMIN_API_ERRORS, 'forbidden'] as const

  app.get('/admin/api/settings', {
    schema: { ...ADMIN_API, summary: 'The live settings in force', response: { 200: SettingsResponse } },
    config: { docs: { errors } },
  }, async (request, reply) => {
    requireAdmin(request, 'Reading the settings')
    void reply.header('Cache-Control', 'no-store')
    return answer(settings.view())
  })

  // The body is checked by the rules the environment is checked by (config.ts
  // checkLiveSettings), not by a schema here, so both give the same one-line messages.
  app.put('/admin/api/settings', {
    schema: { ...ADMIN_API, summary: 'Changes live settings; every instance applies them within 5 s', response: { 200: SettingsResponse } },
    config: { docs: { errors: [...errors, 'invalid_request', 'too_large'], requestBody: { required: true, content: { 'application/json': { schema: SettingsBody } } } } },
  }, async (request, reply) => {
    requireAdmin(request, 'Changing the settings')
    let view: SettingsView
    try {
      view = await settings.save(request.body)
    } catch (error) {
      if (error instanceof ConfigError) throw new AppError('invalid_request', error.message)
      throw error
    }
    request.log.info({ settings: view.values }, 'settings saved')
    void reply.header('Cache-Control', 'no-store')
    return answer(view)
  })
}
