import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp, type AppDeps } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config/config.js'
import { signToken } from '../../src/auth/tokens.js'
import { siteKeyPatterns } from '../../src/presence/redis/keys.js'
import { createTestDataDir } from './database.js'

/** Real Redis, never a mock: CI starts it (scripts/test-services.sh). */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const SECRET = 'test-secret-0123456789abcdef'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A key namespace of its own for each test, so files run in parallel without meeting. */
export function uniqueSite(label: string): string {
  return `t-${label}-${process.pid}-${randomBytes(3).toString('hex')}`
}

/** A clock that moves only when told, so expiry is tested without sleeping. */
export function createClock(start = 1_800_000_000_000): { now: () => number; advance(ms: number): void; set(ms: number): void } {
  let current = start
  return {
    now: () => current,
    advance(ms: number) {
      current += ms
    },
    set(ms: number) {
      current = ms
    },
  }
}

/**
 * The configuration of an in-process test app. Overload shedding is off unless `env` sets
 * CAT_MAX_EVENT_LOOP_DELAY_MS: the test process shares its loop with browsers, PHP and other
 * files' load, which is the test machine's, not the app's (test/app/overload tests shedding).
 */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ CAT_SECRET: SECRET, LOG_LEVEL: 'silent', CAT_DIFF_INTERVAL_MS: '20', CAT_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
}

export interface TestAppOptions extends AppDeps {
  env?: Record<string, string | undefined>
  /** Use the Redis engine under this site; omit for the memory engine. */
  site?: string
}

/** Builds the app exactly as production does (same options function), closed at teardown. */
export async function buildTestApp(t: Teardown, options: TestAppOptions = {}): Promise<FastifyInstance> {
  const { env = {}, site, ...deps } = options
  const redisEnv = site === undefined ? {} : { REDIS_URL, CAT_SITE: site }
  // Each app its own SQLite file unless the test names a database.
  const dataEnv = env.DATABASE_URL === undefined && env.CAT_DATA_DIR === undefined ? { CAT_DATA_DIR: createTestDataDir(t, 'app') } : {}
  const app = await buildApp(testConfig({ ...redisEnv, ...dataEnv, ...env }), { sweepIntervalMs: 0, activityLoops: false, ...deps })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Deletes a site's keys at teardown. */
export function cleanRedisSite(t: Teardown, site: string): void {
  t.teardown(async () => {
    const redis = new Redis(REDIS_URL)
    for (const pattern of siteKeyPatterns(site)) {
      const keys = await redis.keys(pattern)
      if (keys.length > 0) await redis.del(...keys)
    }
    await redis.quit()
  })
}

export function clientToken(claims: { sub?: string; clientId?: string; name?: string; company?: string; ttlS?: number } = {}, nowMs = Date.now(), secrets: readonly string[] = [SECRET]): string {
  return signToken(
    { aud: 'client', sub: claims.sub ?? 'contact-1', clientId: claims.clientId ?? 'client-1', name: claims.name ?? 'Ann Example', company: claims.company ?? 'Acme Ltd', ttlS: claims.ttlS ?? 3600 },
    secrets,
    nowMs,
  )
}

export function adminToken(claims: { sub?: string; ttlS?: number; role?: 'admin' | 'staff'; clients?: readonly string[] } = {}, nowMs = Date.now(), secrets: readonly string[] = [SECRET]): string {
  return signToken({ aud: 'admin', sub: claims.sub ?? 'staff-1', name: 'Staff', role: claims.role, clients: claims.clients, ttlS: claims.ttlS ?? 3600 }, secrets, nowMs)
}

export function heartbeatUrl(params: Record<string, string | undefined>): string {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.set(key, value)
  return `/cat_heartbeat?${query}`
}

const consented = new WeakMap<object, Set<string>>()

/**
 * Records `granted` for the token's contact once per app, as the snippet does after Accept:
 * heartbeats are refused without it (403 consent_required).
 */
export async function ensureConsent(app: { inject: FastifyInstance['inject'] }, token: string): Promise<void> {
  const sub = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string }).sub
  const done = consented.get(app) ?? new Set<string>()
  consented.set(app, done)
  if (done.has(sub)) return
  const res = await app.inject({ method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ token, decision: 'granted', version: 'test-version', locale: 'en' }) })
  if (res.statusCode !== 204) throw new Error(`consent answered ${res.statusCode}: ${res.body}`)
  done.add(sub)
}

/** Polls `check` until it returns a value (not undefined); fails naming `what` after `ms`. */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
