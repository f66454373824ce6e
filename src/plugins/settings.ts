import fp from 'fastify-plugin'
import { createLiveSettings, type Settings } from '../settings/live-settings.js'
import { presenceTimings } from '../shared-state.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The live settings in force on this instance: the one source of the five values. */
    settings: Settings
  }
}

export interface SettingsPluginOptions {
  /** ms between re-reads of the saved settings; 0 leaves them to the caller (tests). */
  refreshEveryMs?: number
}

/**
 * The live settings: the environment's values with the saved ones over them, read before the
 * first request and kept current (the bus's notices, a re-read every few seconds). Applies them
 * to the presence engine and the token cache here; the hub, the activity jobs and the routes
 * read `app.settings` themselves.
 */
export const settingsPlugin = fp<SettingsPluginOptions>(async (app, { refreshEveryMs }) => {
  const { config } = app
  const settings = createLiveSettings({
    defaults: {
      heartbeatIntervalS: config.heartbeatIntervalS,
      presenceTimeoutS: config.presenceTimeoutS,
      idleTimeoutS: config.idleTimeoutS,
      diffIntervalMs: config.diffIntervalMs,
      retentionDays: config.retentionDays,
    },
    store: app.activity,
    bus: app.settingsBus,
    now: app.now,
    log: app.log,
    refreshEveryMs,
  })
  app.addHook('onClose', async () => settings.close())
  const apply = (): void => {
    const { current } = settings
    app.presence.setTimings(presenceTimings(current))
    // A contact seen within two presence timeouts keeps its tokens (core.ts).
    app.clientContacts.setKeepIdleMs(2 * current.presenceTimeoutS * 1000)
  }
  settings.onChange((next, previous) => {
    apply()
    app.log.info({ settings: next, previous }, 'settings applied')
  })
  await settings.refresh()
  apply()
  app.decorate('settings', settings)
}, { name: 'settings', dependencies: ['core', 'database', 'shared-state'] })
