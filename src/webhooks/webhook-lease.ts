/**
 * Which instance delivers the site's webhooks: the holder of a lease in Redis, renewed while it
 * runs. One deliverer at a time sees every event in the order of its stream, so a contact's
 * events keep their order and a leave can wait for the join that cancels it. When the holder
 * dies, its lease runs out and another instance takes it over, with what it left pending.
 */
import type { RedisClient } from '../presence/redis/connections.js'

export interface WebhookLease {
  /** Takes or renews the lease for `ttlMs`; false while another instance holds it. */
  hold(ttlMs: number): Promise<boolean>
  /** Gives the lease up (shutdown), so another instance takes over at once. */
  release(): Promise<void>
}

/** One process: it always delivers. */
export function memoryWebhookLease(): WebhookLease {
  return { hold: async () => true, release: async () => undefined }
}

const HOLD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

export function redisWebhookLease(redis: RedisClient, key: string, holder: string): WebhookLease {
  return {
    async hold(ttlMs) {
      return (await redis.eval(HOLD, 1, key, holder, ttlMs)) === 1
    },
    async release() {
      await redis.eval(RELEASE, 1, key, holder)
    },
  }
}
