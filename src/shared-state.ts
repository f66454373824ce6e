import type { FastifyBaseLogger } from 'fastify'
import type { Config } from './config/config.js'
import type { ActivityEventLog } from './activity/event-log/event-log.js'
import type { ConsentBus } from './consent/consent-bus.js'
import { GAP_GRACE_MS, type EngineEventsAndConsent, type PresenceEngine } from './presence/presence-engine.js'
import { createMemoryPresenceEngine } from './presence/memory-presence-engine.js'
import { createRedisPresenceEngine } from './presence/redis-presence-engine.js'

/**
 * What the instances of a site share: presence, the activity events on their way to the
 * database, and consent notices. In this process's memory (one instance) or in Redis.
 */
export interface SharedState {
  readonly kind: 'memory' | 'redis'
  readonly presence: PresenceEngine
  readonly eventLog: ActivityEventLog
  readonly consentBus: ConsentBus
  close(): Promise<void>
}

export interface SharedStateOptions {
  now: () => number
  /** Names this instance's Redis connections. */
  instanceId?: string
  log: FastifyBaseLogger
}

function adapt(engine: PresenceEngine & EngineEventsAndConsent): SharedState {
  return {
    kind: engine.kind,
    presence: engine,
    eventLog: {
      consumer: (name) => engine.eventSource(name),
      discard: (contactId) => engine.discardEvents(contactId),
      tail: (count) => engine.tailEvents(count),
    },
    consentBus: {
      publish: (contactId) => engine.notifyConsentChange(contactId),
      subscribe: (listener) => engine.onConsentChange(listener),
    },
    close: () => engine.close(),
  }
}

/** Opens the shared state the configuration names: Redis when REDIS_URL is set, memory otherwise. */
export async function openSharedState(config: Config, options: SharedStateOptions): Promise<SharedState> {
  const { now, instanceId, log } = options
  const timings = {
    presenceTimeoutMs: config.presenceTimeoutS * 1000,
    idleTimeoutMs: config.idleTimeoutS * 1000,
    gapAfterMs: config.heartbeatIntervalS * 1000 + GAP_GRACE_MS,
    maxTabs: config.maxTabsPerContact,
  }
  if (config.redisUrl === undefined) return adapt(createMemoryPresenceEngine({ now, ...timings }))
  return adapt(await createRedisPresenceEngine({
    url: config.redisUrl, site: config.site, now, ...timings, connectionName: instanceId, commandTimeoutMs: config.redisTimeoutMs, log,
  }))
}
