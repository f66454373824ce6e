import fp from 'fastify-plugin'
import type { PresenceEngine } from '../presence/presence-engine.js'
import type { ActivityEventLog } from '../activity/event-log/event-log.js'
import type { ConsentBus } from '../consent/consent-bus.js'
import { openSharedState } from '../shared-state.js'
import type { SharedCounters } from '../limits/counters.js'
import type { SettingsBus } from '../settings/settings-bus.js'
import type { WebhookLease } from '../webhooks/webhook-lease.js'

declare module 'fastify' {
  interface FastifyInstance {
    presence: PresenceEngine
    /** The activity events on their way to the database. */
    eventLog: ActivityEventLog
    /** Consent notices between the instances. */
    consentBus: ConsentBus
    /** Rate-limit counts the instances share; undefined in memory. */
    sharedCounters: SharedCounters | undefined
    /** Notices of saved live settings between the instances; undefined in memory. */
    settingsBus: SettingsBus | undefined
    /** The lease of the instance that delivers the webhooks, under a holder's name. */
    webhookLease: (holder: string) => WebhookLease
  }
}

export interface SharedStateOptions {
  /** Names this instance's Redis connections. */
  instanceId?: string
}

/** What the instances of a site share (in memory, or in Redis when REDIS_URL is set): presence, the event log, the consent bus. */
export const sharedStatePlugin = fp<SharedStateOptions>(async (app, { instanceId }) => {
  const shared = await openSharedState(app.config, { now: app.now, instanceId, log: app.log })
  app.addHook('onClose', async () => {
    await shared.close()
  })
  app.decorate('presence', shared.presence)
  app.decorate('eventLog', shared.eventLog)
  app.decorate('consentBus', shared.consentBus)
  app.decorate('sharedCounters', shared.counters)
  app.decorate('settingsBus', shared.settingsBus)
  app.decorate('webhookLease', (holder: string) => shared.webhookLease(holder))
}, { name: 'shared-state', dependencies: ['core'] })
