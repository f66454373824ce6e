import type { RedisConnections } from '../presence/redis/connections.js'

/**
 * Tells the other instances that the saved live settings changed; each re-reads them from the
 * database, which holds the one copy. Without Redis there is no bus: the periodic re-read of
 * the database (live-settings.ts) is how instances sharing one database converge.
 */
export interface SettingsBus {
  /** Tells every other instance. */
  publish(): Promise<void>
  /** Called on a notice of another instance, and after a dropped subscription (notices may have been lost). */
  subscribe(listener: () => void): () => void
  close(): void
}

/**
 * The settings bus over Redis pub/sub, on the site's settings channel (keys.ts): a notice is the
 * sending instance's name, so an instance ignores its own (it applied the change already). The
 * channel is an ordinary one (SUBSCRIBE, PUBLISH), on one Redis and on a cluster alike.
 */
export async function createRedisSettingsBus(connections: RedisConnections, channel: string): Promise<SettingsBus> {
  const { name, redis, call } = connections
  const listeners = new Set<() => void>()
  const tell = (): void => {
    for (const listener of listeners) listener()
  }
  connections.onResubscribed(tell)
  await connections.subscribe(channel, (origin) => {
    if (origin !== name) tell()
  })
  return {
    async publish() {
      await call(() => redis.publish(channel, name))
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      listeners.clear()
    },
  }
}
