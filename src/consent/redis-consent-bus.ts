import type { RedisConnections } from '../presence/redis/connections.js'
import type { ConsentBus } from './consent-bus.js'

/** Separates the sending instance's name from the contact id in a notice. */
const ORIGIN_SEPARATOR = '\u0000'

/**
 * The consent bus over Redis pub/sub: a notice is `origin NUL contactId` on the site's consent
 * channel (keys.ts). Each instance hears every notice but its own, which its listeners had at
 * once; after a dropped subscriber connection they hear `*` (notices may have been lost).
 */
export async function createRedisConsentBus(connections: RedisConnections, channel: string): Promise<ConsentBus & { close(): void }> {
  const { name, redis, call } = connections
  const listeners = new Set<(contactId: string) => void>()
  const tell = (contactId: string): void => {
    for (const listener of listeners) listener(contactId)
  }
  connections.onResubscribed(() => tell('*'))
  await connections.subscribe(channel, (text) => {
    const cut = text.indexOf(ORIGIN_SEPARATOR)
    if (text.slice(0, cut) === name) return
    tell(text.slice(cut + 1))
  })
  return {
    async publish(contactId) {
      // Locally at once (the caller may act on it next), and to the other instances.
      tell(contactId)
      await call(() => redis.publish(channel, name + ORIGIN_SEPARATOR + contactId))
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
