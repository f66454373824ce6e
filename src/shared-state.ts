import type { FastifyBaseLogger } from 'fastify'
import type { Config, LiveSettings } from './config/config.js'
import type { ActivityEventLog } from './activity/event-log/event-log.js'
import { createMemoryEventLog } from './activity/event-log/memory-event-log.js'
import { createRedisEventLog } from './activity/event-log/redis-event-log.js'
import type { ConsentBus } from './consent/consent-bus.js'
import { createMemoryConsentBus } from './consent/memory-consent-bus.js'
import { createRedisConsentBus } from './consent/redis-consent-bus.js'
import { GAP_GRACE_MS, type LiveTimings, type PresenceEngine, type PresenceTimings } from './presence/presence-engine.js'
import { createMemoryPresenceEngine } from './presence/memory/memory-presence-engine.js'
import { openRedisConnections, type RedisConnectionOptions } from './presence/redis/connections.js'
import { DEFAULT_PARTITIONS, siteKeys } from './presence/redis/keys.js'
import { memoryWebhookLease, redisWebhookLease, type WebhookLease } from './webhooks/webhook-lease.js'
import { claimLayout } from './presence/redis/layout.js'
import { redisCounters, type SharedCounters } from './limits/counters.js'
import { createRedisPresenceEngine, type RedisPresenceEngine, type RedisPresenceEngineOptions } from './presence/redis/redis-presence-engine.js'
import { createRedisSettingsBus, type SettingsBus } from './settings/settings-bus.js'

/**
 * What the instances of a site share: presence, the activity events on their way to the
 * database, and consent notices. In this process's memory (one instance) or in Redis.
 */
export interface SharedState<Engine extends PresenceEngine = PresenceEngine> {
  readonly kind: 'memory' | 'redis'
  readonly presence: Engine
  readonly eventLog: ActivityEventLog
  readonly consentBus: ConsentBus
  /** Rate-limit counts the instances share; undefined in memory (one instance). */
  readonly counters?: SharedCounters
  /** Notices of saved live settings between the instances; undefined in memory (one instance). */
  readonly settingsBus?: SettingsBus
  /** The lease of the instance that delivers the webhooks, held under this holder's name (always held in memory). */
  webhookLease(holder: string): WebhookLease
  /** Closes the three and the connections they share. */
  close(): Promise<void>
}

export interface SharedStateOptions {
  now: () => number
  /** Names this instance's Redis connections. */
  instanceId?: string
  log: FastifyBaseLogger
}

export interface MemoryStateOptions extends PresenceTimings {
  now: () => number
  /** Events kept for the activity writer; the oldest are dropped past this. */
  maxQueuedEvents?: number
}

/** The shared state of one process, in its memory. */
export function openMemoryState(options: MemoryStateOptions): SharedState {
  const eventLog = createMemoryEventLog({ maxQueuedEvents: options.maxQueuedEvents })
  const consentBus = createMemoryConsentBus()
  const presence = createMemoryPresenceEngine({ ...options, events: eventLog })
  return {
    kind: 'memory',
    presence,
    eventLog,
    consentBus,
    webhookLease: () => memoryWebhookLease(),
    async close() {
      await presence.close()
      consentBus.close()
      eventLog.close()
    },
  }
}

export type RedisStateOptions = RedisConnectionOptions & RedisPresenceEngineOptions

/**
 * The shared state of a site in Redis: the three share one command and one subscriber
 * connection. Refuses to open (LayoutMismatchError) when the site's layout in Redis has another
 * partition count.
 */
export async function openRedisState(options: RedisStateOptions): Promise<SharedState<RedisPresenceEngine>> {
  const connections = await openRedisConnections(options)
  try {
    const keys = siteKeys(options.site)
    const partitions = options.partitions ?? DEFAULT_PARTITIONS
    await claimLayout(connections.redis, keys.layout, options.site, partitions)
    const presence = await createRedisPresenceEngine(connections, { ...options, partitions })
    const consentBus = await createRedisConsentBus(connections, keys.consentChannel)
    const eventLog = await createRedisEventLog(connections, { streams: presence.partitions.map((partition) => partition.events), legacyStream: keys.legacyEvents })
    const settingsBus = await createRedisSettingsBus(connections, keys.settingsChannel)
    return {
      kind: 'redis',
      presence,
      eventLog,
      consentBus,
      webhookLease: (holder) => redisWebhookLease(connections.redis, keys.webhookLease, holder),
      counters: redisCounters(connections.redis, connections.call, options.site, partitions),
      settingsBus,
      async close() {
        await presence.close()
        consentBus.close()
        settingsBus.close()
        await connections.close()
      },
    }
  } catch (error) {
    await connections.close()
    throw error
  }
}

/** The presence engine's timings from the live settings (PresenceEngine.setTimings). */
export function presenceTimings(settings: Pick<LiveSettings, 'heartbeatIntervalS' | 'presenceTimeoutS' | 'idleTimeoutS'>): LiveTimings {
  return {
    presenceTimeoutMs: settings.presenceTimeoutS * 1000,
    idleTimeoutMs: settings.idleTimeoutS * 1000,
    gapAfterMs: settings.heartbeatIntervalS * 1000 + GAP_GRACE_MS,
  }
}

/**
 * Opens the shared state the configuration names: one Redis when REDIS_URL is set, a Redis
 * Cluster when REDIS_CLUSTER_NODES is, memory otherwise.
 */
export async function openSharedState(config: Config, options: SharedStateOptions): Promise<SharedState> {
  const { now, instanceId, log } = options
  // The environment's timings; the saved live settings replace them before the first request (plugins/settings.ts).
  const timings = { ...presenceTimings(config), maxTabs: config.maxTabsPerContact }
  const redis = { site: config.site, partitions: config.redisPartitions, now, ...timings, connectionName: instanceId, commandTimeoutMs: config.redisTimeoutMs, waitReplicas: config.redisWaitReplicas, log }
  if (config.redisClusterNodes !== undefined) return openRedisState({ clusterNodes: config.redisClusterNodes, ...redis })
  if (config.redisUrl !== undefined) return openRedisState({ url: config.redisUrl, ...redis })
  return openMemoryState({ now, ...timings })
}
