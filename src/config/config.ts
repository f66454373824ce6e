import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { getHeapStatistics } from 'node:v8'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const CLUSTER_NODES_EXPECTED = 'a comma list of host:port or redis://[user:pass@]host:port (or rediss://) seed nodes'
const TRUST_PROXY_EXPECTED = 'a comma list of IP addresses or CIDRs such as 10.0.0.5,10.1.0.0/16,fd00::/8'

/**
 * The settings an admin may change while the service runs (GET and PUT /admin/api/settings);
 * the environment gives their defaults. One rule set for both: the bounds here, and both
 * timeouts above the interval (checkLiveSettings), with the same one-line messages.
 */
export interface LiveSettings {
  /** Seconds between heartbeats, told to the snippet. */
  readonly heartbeatIntervalS: number
  /** Seconds without a heartbeat after which a contact has left. */
  readonly presenceTimeoutS: number
  /** Seconds a contact whose tabs are all hidden stays online (idle). */
  readonly idleTimeoutS: number
  /** Milliseconds over which diffs to dashboards are coalesced. */
  readonly diffIntervalMs: number
  /** Days of activity kept. */
  readonly retentionDays: number
}

export type LiveSettingName = keyof LiveSettings

/** How a message names a setting: by its variable (the environment) or by its JSON field (the API). */
export type SettingNaming = 'env' | 'json'

interface LiveSettingRule {
  readonly env: string
  readonly minimum: number
  readonly maximum: number
  readonly default: number
  /** What a message says is expected; `{heartbeatIntervalS}` is the interval's name in the same naming. */
  readonly expected: string
}

export const LIVE_SETTINGS: { readonly [K in LiveSettingName]: LiveSettingRule } = {
  heartbeatIntervalS: { env: 'CAT_HEARTBEAT_INTERVAL_S', minimum: 1, maximum: 3600, default: 30, expected: 'whole seconds, 1-3600' },
  presenceTimeoutS: { env: 'CAT_PRESENCE_TIMEOUT_S', minimum: 2, maximum: 86400, default: 75, expected: 'whole seconds above {heartbeatIntervalS}' },
  idleTimeoutS: { env: 'CAT_IDLE_TIMEOUT_S', minimum: 2, maximum: 604800, default: 600, expected: 'whole seconds above {heartbeatIntervalS}' },
  diffIntervalMs: { env: 'CAT_DIFF_INTERVAL_MS', minimum: 0, maximum: 60000, default: 100, expected: 'whole milliseconds, 0-60000' },
  retentionDays: { env: 'CAT_RETENTION_DAYS', minimum: 1, maximum: 36500, default: 90, expected: 'whole days, 1-36500' },
}

export const LIVE_SETTING_NAMES = Object.keys(LIVE_SETTINGS) as LiveSettingName[]

/** A setting's name in messages of `naming`. */
export function settingName(name: LiveSettingName, naming: SettingNaming): string {
  return naming === 'env' ? LIVE_SETTINGS[name].env : name
}

function settingExpected(name: LiveSettingName, naming: SettingNaming): string {
  return LIVE_SETTINGS[name].expected.replace('{heartbeatIntervalS}', settingName('heartbeatIntervalS', naming))
}

function settingSchema(name: LiveSettingName, naming: SettingNaming) {
  const { minimum, maximum, default: value } = LIVE_SETTINGS[name]
  return Type.Integer({ minimum, maximum, default: value, description: settingExpected(name, naming) })
}

/**
 * The five live settings checked as a whole: each a whole number within its bounds, and both
 * timeouts above the heartbeat interval. Throws ConfigError with one line naming the setting as
 * `naming` says; the environment passes its raw text as `shown`, so a message repeats what the
 * operator wrote.
 */
export function checkLiveSettings(values: Readonly<Record<LiveSettingName, unknown>>, naming: SettingNaming, shown: Readonly<Record<LiveSettingName, unknown>> = values): LiveSettings {
  for (const name of LIVE_SETTING_NAMES) {
    if (!Value.Check(settingSchema(name, naming), values[name])) fail(settingName(name, naming), settingExpected(name, naming), shown[name])
  }
  const checked = values as LiveSettings
  const interval = checked.heartbeatIntervalS
  for (const name of ['presenceTimeoutS', 'idleTimeoutS'] as const) {
    if (checked[name] <= interval) fail(settingName(name, naming), `${settingExpected(name, naming)} (${interval})`, checked[name])
  }
  return Object.freeze({
    heartbeatIntervalS: checked.heartbeatIntervalS,
    presenceTimeoutS: checked.presenceTimeoutS,
    idleTimeoutS: checked.idleTimeoutS,
    diffIntervalMs: checked.diffIntervalMs,
    retentionDays: checked.retentionDays,
  })
}

/**
 * The environment, described once. Every key is the variable's name; the schema states its
 * type, unit and bounds, and `Config` below is derived from it, so the two cannot drift.
 * An empty value counts as unset. The README's Configuration table lists every variable.
 */
const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development', description: 'production makes CAT_SECRET required' }),
  /** TCP port to listen on. */
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'a TCP port, 0-65535' }),
  /** Interface to bind; the Docker image sets 0.0.0.0. */
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'a host name or address' }),
  /** HMAC secrets, comma-separated: the first signs, all verify. */
  CAT_SECRET: Type.Optional(Type.String({ description: 'a comma list of secrets of at least 16 characters each' })),
  /** redis:// or rediss:// URL; unset means the in-memory engine. */
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'a redis:// or rediss:// URL' })),
  /** Seed nodes of a Redis Cluster, comma-separated; exclusive with REDIS_URL. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ description: CLUSTER_NODES_EXPECTED })),
  /** Milliseconds a Redis command may go unanswered before it fails (the request gets 503). */
  CAT_REDIS_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 1000, description: 'whole milliseconds, 50-60000' }),
  /** Replicas that must have an event-writing script call before it is answered; unset: 1 on a cluster, 0 on one Redis. */
  CAT_REDIS_WAIT_REPLICAS: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'a whole number of replicas, 0-10' })),
  /** mysql:// URL; unset means SQLite under CAT_DATA_DIR. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^mysql://[^/]+/[^/?#]+', description: 'a mysql://user:pass@host:3306/db URL' })),
  /** Directory of the embedded SQLite file. */
  CAT_DATA_DIR: Type.String({ minLength: 1, default: './data', description: 'a directory path' }),
  /** Directory of `xx.json` files overriding or adding the snippet's strings, read at start. */
  CAT_LANG_DIR: Type.Optional(Type.String({ minLength: 1, description: 'a directory of language files' })),
  /** Namespace of this deployment's Redis keys. */
  CAT_SITE: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'default', description: '1-64 characters of A-Z a-z 0-9 _ . -' }),
  /** Other origins allowed by CORS and the WebSocket Origin check, comma-separated. */
  CAT_ALLOWED_ORIGINS: Type.String({ default: '', description: 'a comma list of origins such as https://portal.example.com' }),
  /** Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed; none by default. */
  CAT_TRUST_PROXY: Type.String({ default: '', description: TRUST_PROXY_EXPECTED }),
  /** Seconds between heartbeats, told to the snippet (a live setting: LIVE_SETTINGS). */
  CAT_HEARTBEAT_INTERVAL_S: settingSchema('heartbeatIntervalS', 'env'),
  /** Seconds without a heartbeat after which a contact has left; must exceed the interval. */
  CAT_PRESENCE_TIMEOUT_S: settingSchema('presenceTimeoutS', 'env'),
  /** Seconds a contact whose tabs are all hidden stays online (idle). */
  CAT_IDLE_TIMEOUT_S: settingSchema('idleTimeoutS', 'env'),
  /** Milliseconds over which diffs to dashboards are coalesced. */
  CAT_DIFF_INTERVAL_MS: settingSchema('diffIntervalMs', 'env'),
  /** Most open tabs per contact; a heartbeat of a new tab beyond it gets 429. */
  CAT_MAX_TABS_PER_CONTACT: Type.Integer({ minimum: 1, maximum: 1000, default: 32, description: 'a whole number of tabs, 1-1000' }),
  /** Partitions of a site's presence in Redis (part of the site's layout: every instance the same). */
  CAT_REDIS_PARTITIONS: Type.Integer({ minimum: 1, maximum: 256, default: 24, description: 'a whole number of partitions, 1-256' }),
  /** Days of activity kept. */
  CAT_RETENTION_DAYS: settingSchema('retentionDays', 'env'),
  /** Heartbeats per contact per minute; beyond, 429. 0: no limit. */
  CAT_RATE_LIMIT_HEARTBEATS: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 300, description: 'a whole number of heartbeats a minute, 0 (no limit)-1000000' }),
  /** Requests per client address per minute that may fail authentication; beyond, 429 before any token is checked. 0: no limit. */
  CAT_RATE_LIMIT_AUTH_FAILURES: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 60, description: 'a whole number of failures a minute, 0 (no limit)-1000000' }),
  /** Consent decisions per contact per minute; beyond, 429. 0: no limit. */
  CAT_RATE_LIMIT_CONSENT: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 30, description: 'a whole number of requests a minute, 0 (no limit)-1000000' }),
  /** Admin API requests per staff member per minute; beyond, 429. 0: no limit. */
  CAT_RATE_LIMIT_ADMIN: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 600, description: 'a whole number of requests a minute, 0 (no limit)-1000000' }),
  /** Event-loop delay (mean over a second) past which requests get 503 until it falls back; 0: never. */
  CAT_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1000, description: 'whole milliseconds, 0 (off)-60000' }),
  /** V8 heap in use past which requests get 503 until it falls back; unset: 90 % of the heap limit; 0: never. */
  CAT_MAX_HEAP_USED_MB: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_048_576, description: 'whole MiB, 0 (off)-1048576' })),
  /** Whether the instance counts what GET /metrics reports (off: /metrics answers 404). */
  CAT_METRICS: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on', description: 'on or off' }),
  /** Bearer token that may read GET /metrics from any address; unset: loopback callers only. */
  CAT_METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'a token of at least 16 characters' })),
  /** The install's public base URL; its host is the domain a licence is bound to. */
  CAT_PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'an http:// or https:// URL such as https://presence.example.com' })),
  /** The vendor's licence server; unset: licensing off. */
  CAT_LICENSE_SERVER_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'an https:// URL (http:// only to a loopback host)' })),
  /** The licence key; unset: entered in the dashboard's settings. */
  CAT_LICENSE_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{8,128}$', description: '8-128 characters of A-Z a-z 0-9 _ -' })),
  /** The vendor's Ed25519 public key that signs leases: PEM, or the base64 of its SPKI DER on one line. */
  CAT_LICENSE_PUBLIC_KEY: Type.Optional(Type.String({ description: 'an Ed25519 public key, PEM or the base64 of its SPKI DER' })),
  /** Demo mode: the staff side is read-only. */
  CAT_DEMO_MODE: Type.Union(['0', '1', 'on', 'off', 'true', 'false'].map((v) => Type.Literal(v)), { default: '0', description: '1 or 0 (on/off, true/false)' }),
  /** Simulated contacts browsing the demo portal (demo mode only). */
  CAT_DEMO_TRAFFIC: Type.Integer({ minimum: 0, maximum: 10_000, default: 0, description: 'a whole number of simulated contacts, 0-10000' }),
  /** Where presence webhooks are POSTed; unset: webhooks off. */
  CAT_WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'an http:// or https:// URL such as https://crm.example.com/cat_webhook' })),
  /** The HMAC-SHA256 key of the webhooks' CAT-Signature header; required with CAT_WEBHOOK_URL. */
  CAT_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16, description: 'a secret of at least 16 characters' })),
  /** A leave and a join of one contact within this many seconds cancel out (a page reload notifies nobody). */
  CAT_WEBHOOK_DEBOUNCE_S: Type.Integer({ minimum: 0, maximum: 3600, default: 5, description: 'whole seconds, 0-3600' }),
  /** pino level. */
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
    default: 'info',
    description: 'one of fatal, error, warn, info, debug, trace, silent',
  }),
})

type Env = Static<typeof EnvSchema>

const LIVE_SETTING_ENV = new Set<string>(LIVE_SETTING_NAMES.map((name) => LIVE_SETTINGS[name].env))

/**
 * A seed node of a Redis Cluster (REDIS_CLUSTER_NODES). The client learns the other nodes from
 * it. Credentials and TLS are the cluster's: every node of the list carries the same.
 */
export interface RedisClusterNode {
  /** Host name or address (an IPv6 address without its brackets). */
  readonly host: string
  readonly port: number
  /** rediss://: TLS to every node. */
  readonly tls: boolean
  readonly username: string | undefined
  readonly password: string | undefined
}

export interface Config {
  readonly production: boolean
  readonly port: number
  readonly host: string
  /** Verification secrets in `kid` order; the first signs. */
  readonly secrets: readonly string[]
  /** True when no CAT_SECRET was given and one was generated for this process. */
  readonly secretGenerated: boolean
  /** REDIS_URL: one Redis. At most one of redisUrl and redisClusterNodes is set. */
  readonly redisUrl: string | undefined
  /** REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster, in their order. */
  readonly redisClusterNodes: readonly RedisClusterNode[] | undefined
  readonly redisTimeoutMs: Env['CAT_REDIS_TIMEOUT_MS']
  /**
   * CAT_REDIS_WAIT_REPLICAS, resolved: replicas each script call that appends activity events
   * waits for (WAIT), 0 for none; 1 on a cluster and 0 on one Redis when unset.
   */
  readonly redisWaitReplicas: number
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  /** CAT_LANG_DIR, resolved; undefined when unset. */
  readonly langDir: string | undefined
  readonly site: string
  readonly allowedOrigins: readonly string[]
  /** CAT_TRUST_PROXY: addresses and CIDRs of proxies whose X-Forwarded-For is believed; empty: none. */
  readonly trustProxy: readonly string[]
  /**
   * The five live settings as the environment gives them: their defaults. What is in force is
   * `app.settings.current` (saved settings override these).
   */
  readonly heartbeatIntervalS: Env['CAT_HEARTBEAT_INTERVAL_S']
  readonly presenceTimeoutS: Env['CAT_PRESENCE_TIMEOUT_S']
  readonly idleTimeoutS: Env['CAT_IDLE_TIMEOUT_S']
  readonly diffIntervalMs: Env['CAT_DIFF_INTERVAL_MS']
  readonly maxTabsPerContact: Env['CAT_MAX_TABS_PER_CONTACT']
  readonly redisPartitions: Env['CAT_REDIS_PARTITIONS']
  readonly retentionDays: Env['CAT_RETENTION_DAYS']
  /** Requests a minute: per contact on heartbeats and consent, per address failing authentication, per staff member on the admin API; 0: no limit. */
  readonly rateLimits: { readonly heartbeats: number; readonly authFailures: number; readonly consent: number; readonly admin: number }
  /** Overload shedding (@fastify/under-pressure): the event-loop delay and heap in use past which requests get 503; 0: not checked. */
  readonly overload: { readonly maxEventLoopDelayMs: number; readonly maxHeapUsedBytes: number }
  /** CAT_METRICS: the instance counts what GET /metrics reports. */
  readonly metrics: boolean
  /** CAT_METRICS_TOKEN: a bearer token that reads /metrics from anywhere; undefined: loopback only. */
  readonly metricsToken: string | undefined
  /** CAT_PUBLIC_URL, normalised (no trailing slash); undefined when unset. */
  readonly publicUrl: string | undefined
  /** Licensing; undefined (off) unless CAT_LICENSE_SERVER_URL is set. */
  readonly license: LicenseConfig | undefined
  /** CAT_DEMO_MODE: the staff side is read-only (changes answer 403 demo_mode). */
  readonly demoMode: boolean
  /** CAT_DEMO_TRAFFIC: simulated contacts browsing the demo portal; 0 outside demo mode. */
  readonly demoTraffic: number
  /** Presence webhooks; undefined (off) unless CAT_WEBHOOK_URL is set. */
  readonly webhook: WebhookConfig | undefined
  readonly logLevel: Env['LOG_LEVEL']
}

/** Presence webhooks (CAT_WEBHOOK_*). */
export interface WebhookConfig {
  /** CAT_WEBHOOK_URL, normalised. */
  readonly url: string
  /** CAT_WEBHOOK_SECRET: signs each POST; never logged. */
  readonly secret: string
  /** CAT_WEBHOOK_DEBOUNCE_S in ms: a leave is held this long, and a join of the contact within it cancels both. */
  readonly debounceMs: number
}

export interface LicenseConfig {
  /** The licence server's base URL, without a trailing slash. */
  readonly serverUrl: string
  /** The domain the licence is bound to: CAT_PUBLIC_URL's host name, lower case. */
  readonly domain: string
  /** CAT_LICENSE_KEY; undefined: entered in the dashboard. */
  readonly key: string | undefined
  /** The vendor's Ed25519 public key. */
  readonly publicKey: KeyObject
}

/** A bad environment: `message` is the one line to print, naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const MIN_SECRET_LENGTH = 16

function fail(name: string, expected: string, value: unknown): never {
  // Secrets and URLs that may carry a password are never repeated back.
  const hidden = name === 'CAT_SECRET' || name === 'CAT_WEBHOOK_SECRET' || name === 'CAT_WEBHOOK_URL' || name === 'REDIS_URL' || name === 'DATABASE_URL' || name === 'CAT_LICENSE_KEY' || (typeof value === 'string' && value.includes('@'))
  const shown = hidden ? '(hidden)' : JSON.stringify(value)
  throw new ConfigError(`${name}: expected ${expected}, got ${shown}`)
}

function parseOrigins(raw: string): string[] {
  const origins: string[] = []
  for (const part of raw.split(',')) {
    const item = part.trim()
    if (item === '') continue
    let url: URL
    try {
      url = new URL(item)
    } catch {
      fail('CAT_ALLOWED_ORIGINS', 'a comma list of origins such as https://portal.example.com', item)
    }
    // Compared by parts, not as text: `https://Portal.Example.com:443/` is the origin `https://portal.example.com`.
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      fail('CAT_ALLOWED_ORIGINS', 'origins only (scheme://host[:port], no path)', item)
    }
    origins.push(url.origin)
  }
  return origins
}

/**
 * REDIS_CLUSTER_NODES → seed nodes. A plain `host:port` is `redis://host:port`. The database is
 * always 0 on a cluster, so a path is refused; credentials given on some entries apply to all,
 * and entries may not disagree on them or on TLS.
 */
function parseClusterNodes(raw: string): RedisClusterNode[] {
  const name = 'REDIS_CLUSTER_NODES'
  const parsed: { host: string; port: number; tls: boolean; username: string | undefined; password: string | undefined }[] = []
  for (const part of raw.split(',')) {
    const item = part.trim()
    if (item === '') continue
    let url: URL
    try {
      url = new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(item) ? item : `redis://${item}`)
    } catch {
      fail(name, CLUSTER_NODES_EXPECTED, item)
    }
    // redis: is not a special scheme for WHATWG URLs, so an explicit port is always kept.
    const port = Number(url.port)
    if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '' || url.port === '' || port < 1 || port > 65535) {
      fail(name, CLUSTER_NODES_EXPECTED, item)
    }
    if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
      fail(name, 'host:port seed nodes without a database, path or query (a cluster has database 0 only)', item)
    }
    parsed.push({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port,
      tls: url.protocol === 'rediss:',
      username: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
    })
  }
  if (parsed.length === 0) fail(name, CLUSTER_NODES_EXPECTED, raw)
  const tls = parsed[0]?.tls ?? false
  if (parsed.some((node) => node.tls !== tls)) {
    throw new ConfigError(`${name}: expected one scheme for every seed node (a plain host:port is redis://), got both redis:// and rediss://`)
  }
  const withCredentials = parsed.filter((node) => node.username !== undefined || node.password !== undefined)
  const { username, password } = withCredentials[0] ?? { username: undefined, password: undefined }
  if (withCredentials.some((node) => node.username !== username || node.password !== password)) {
    // The message names no credential: they differ, which is all the operator needs to know.
    throw new ConfigError(`${name}: expected the same user and password on every seed node that carries them, got different ones`)
  }
  return parsed.map((node) => Object.freeze({ ...node, username, password }))
}

/**
 * Each entry is an IPv4 or IPv6 address, optionally with a prefix length (/1-32, /1-128), the
 * forms Fastify's proxy-addr matches; anything else (a host name, a zone id, a netmask) is
 * refused here rather than by proxy-addr at the first request.
 */
function parseTrustProxy(raw: string): string[] {
  const entries: string[] = []
  for (const part of raw.split(',')) {
    const item = part.trim()
    if (item === '') continue
    const [address = '', prefix, extra] = item.split('/')
    const family = address.includes('%') ? 0 : isIP(address)
    const maxPrefix = family === 4 ? 32 : 128
    if (family === 0 || extra !== undefined || (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) < 1 || Number(prefix) > maxPrefix))) {
      fail('CAT_TRUST_PROXY', TRUST_PROXY_EXPECTED, item)
    }
    entries.push(item)
  }
  return entries
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

function parseBaseUrl(name: string, raw: string, expected: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    fail(name, expected, raw)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') fail(name, expected, raw)
  return url
}

/** PEM, or the base64 of the SPKI DER on one line (what fits in one environment variable). */
function parseEd25519PublicKey(raw: string): KeyObject {
  const expected = 'an Ed25519 public key, PEM or the base64 of its SPKI DER'
  let key: KeyObject
  try {
    key = raw.includes('-----BEGIN') ? createPublicKey(raw.replace(/\\n/g, '\n')) : createPublicKey({ key: Buffer.from(raw, 'base64'), format: 'der', type: 'spki' })
  } catch {
    fail('CAT_LICENSE_PUBLIC_KEY', expected, raw)
  }
  if (key.asymmetricKeyType !== 'ed25519') fail('CAT_LICENSE_PUBLIC_KEY', expected, `a ${key.asymmetricKeyType ?? 'unknown'} key`)
  return key
}

function parseLicense(env: Env): LicenseConfig | undefined {
  if (env.CAT_LICENSE_SERVER_URL === undefined) return undefined
  const server = parseBaseUrl('CAT_LICENSE_SERVER_URL', env.CAT_LICENSE_SERVER_URL, 'an https:// URL (http:// only to a loopback host)')
  // A lease travels over this connection: plain HTTP only where nothing is on the wire.
  if (server.protocol === 'http:' && !LOOPBACK_HOSTS.has(server.hostname)) fail('CAT_LICENSE_SERVER_URL', 'an https:// URL (http:// only to a loopback host)', env.CAT_LICENSE_SERVER_URL)
  if (env.CAT_PUBLIC_URL === undefined) throw new ConfigError("CAT_PUBLIC_URL: required when CAT_LICENSE_SERVER_URL is set (its host is the licensed domain), e.g. https://presence.example.com")
  if (env.CAT_LICENSE_PUBLIC_KEY === undefined) throw new ConfigError("CAT_LICENSE_PUBLIC_KEY: required when CAT_LICENSE_SERVER_URL is set (the vendor's Ed25519 public key, PEM or the base64 of its SPKI DER)")
  return Object.freeze({
    serverUrl: server.href.replace(/\/+$/, ''),
    domain: new URL(env.CAT_PUBLIC_URL).hostname.toLowerCase(),
    key: env.CAT_LICENSE_KEY,
    publicKey: parseEd25519PublicKey(env.CAT_LICENSE_PUBLIC_KEY),
  })
}

function parseWebhook(env: Env): WebhookConfig | undefined {
  if (env.CAT_WEBHOOK_URL === undefined) {
    if (env.CAT_WEBHOOK_SECRET !== undefined) throw new ConfigError('CAT_WEBHOOK_SECRET: set without CAT_WEBHOOK_URL (the URL webhooks are POSTed to)')
    return undefined
  }
  let url: URL
  try {
    url = new URL(env.CAT_WEBHOOK_URL)
  } catch {
    fail('CAT_WEBHOOK_URL', 'an http:// or https:// URL such as https://crm.example.com/cat_webhook', env.CAT_WEBHOOK_URL)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.hash !== '') {
    fail('CAT_WEBHOOK_URL', 'an http:// or https:// URL without credentials or #fragment', env.CAT_WEBHOOK_URL)
  }
  if (env.CAT_WEBHOOK_SECRET === undefined) throw new ConfigError('CAT_WEBHOOK_SECRET: required when CAT_WEBHOOK_URL is set (a secret of at least 16 characters the receiver verifies CAT-Signature with)')
  return Object.freeze({ url: url.href, secret: env.CAT_WEBHOOK_SECRET, debounceMs: env.CAT_WEBHOOK_DEBOUNCE_S * 1000 })
}

/** Reads and validates the environment once; throws ConfigError with one line naming the variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value.trim() !== '') raw[key] = value.trim()
  }
  const withDefaults = Value.Default(EnvSchema, raw) as Record<string, unknown>
  const shownValues = { ...withDefaults }
  for (const [key, schema] of Object.entries(EnvSchema.properties) as [keyof Env, TSchema][]) {
    const value = withDefaults[key]
    if (value === undefined) continue
    if (schema.type === 'integer') {
      // Number('') and Number('1e3') are numbers; an env integer is digits only.
      if (typeof value === 'string' && !/^\d+$/.test(value)) fail(key, schema.description as string, value)
      withDefaults[key] = Number(value)
    }
    // The live settings are checked together below, by the rules the API uses.
    if (!LIVE_SETTING_ENV.has(key) && !Value.Check(schema, withDefaults[key])) fail(key, schema.description as string, value)
  }
  const env = withDefaults as Env

  const envSetting = (source: Record<string, unknown>): Record<LiveSettingName, unknown> =>
    Object.fromEntries(LIVE_SETTING_NAMES.map((name) => [name, source[LIVE_SETTINGS[name].env]])) as Record<LiveSettingName, unknown>
  const settings = checkLiveSettings(envSetting(withDefaults), 'env', envSetting(shownValues))

  if (env.REDIS_URL !== undefined && env.REDIS_CLUSTER_NODES !== undefined) {
    throw new ConfigError('REDIS_URL and REDIS_CLUSTER_NODES: both are set; only one of them may be (REDIS_URL for one Redis, REDIS_CLUSTER_NODES for a Redis Cluster)')
  }
  const redisClusterNodes = env.REDIS_CLUSTER_NODES === undefined ? undefined : Object.freeze(parseClusterNodes(env.REDIS_CLUSTER_NODES))

  const publicUrl = env.CAT_PUBLIC_URL === undefined ? undefined : parseBaseUrl('CAT_PUBLIC_URL', env.CAT_PUBLIC_URL, 'an http:// or https:// URL such as https://presence.example.com').href.replace(/\/+$/, '')
  const license = parseLicense(env)
  const demoMode = env.CAT_DEMO_MODE === '1' || env.CAT_DEMO_MODE === 'on' || env.CAT_DEMO_MODE === 'true'
  if (!demoMode && env.CAT_DEMO_TRAFFIC > 0) throw new ConfigError(`CAT_DEMO_TRAFFIC: simulated contacts need CAT_DEMO_MODE=1, got ${env.CAT_DEMO_TRAFFIC} without it`)

  const production = env.NODE_ENV === 'production'
  let secrets: string[]
  let secretGenerated = false
  if (env.CAT_SECRET !== undefined) {
    secrets = env.CAT_SECRET.split(',').map((s) => s.trim())
    if (secrets.some((s) => s.length < MIN_SECRET_LENGTH)) {
      fail('CAT_SECRET', `a comma list of secrets of at least ${MIN_SECRET_LENGTH} characters each`, env.CAT_SECRET)
    }
  } else if (production) {
    throw new ConfigError('CAT_SECRET: required when NODE_ENV=production (a comma list of secrets of at least 16 characters each)')
  } else {
    secrets = [randomBytes(32).toString('base64url')]
    secretGenerated = true
  }

  return Object.freeze({
    production,
    port: env.PORT,
    host: env.HOST,
    secrets: Object.freeze(secrets),
    secretGenerated,
    redisUrl: env.REDIS_URL,
    redisClusterNodes,
    redisTimeoutMs: env.CAT_REDIS_TIMEOUT_MS,
    redisWaitReplicas: env.CAT_REDIS_WAIT_REPLICAS ?? (redisClusterNodes === undefined ? 0 : 1),
    databaseUrl: env.DATABASE_URL,
    dataDir: resolve(env.CAT_DATA_DIR),
    langDir: env.CAT_LANG_DIR === undefined ? undefined : resolve(env.CAT_LANG_DIR),
    site: env.CAT_SITE,
    allowedOrigins: Object.freeze(parseOrigins(env.CAT_ALLOWED_ORIGINS)),
    trustProxy: Object.freeze(parseTrustProxy(env.CAT_TRUST_PROXY)),
    heartbeatIntervalS: settings.heartbeatIntervalS,
    presenceTimeoutS: settings.presenceTimeoutS,
    idleTimeoutS: settings.idleTimeoutS,
    diffIntervalMs: settings.diffIntervalMs,
    maxTabsPerContact: env.CAT_MAX_TABS_PER_CONTACT,
    redisPartitions: env.CAT_REDIS_PARTITIONS,
    retentionDays: settings.retentionDays,
    rateLimits: Object.freeze({
      heartbeats: env.CAT_RATE_LIMIT_HEARTBEATS,
      authFailures: env.CAT_RATE_LIMIT_AUTH_FAILURES,
      consent: env.CAT_RATE_LIMIT_CONSENT,
      admin: env.CAT_RATE_LIMIT_ADMIN,
    }),
    overload: Object.freeze({
      maxEventLoopDelayMs: env.CAT_MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: env.CAT_MAX_HEAP_USED_MB === undefined ? Math.floor(getHeapStatistics().heap_size_limit * 0.9) : env.CAT_MAX_HEAP_USED_MB * 1024 * 1024,
    }),
    metrics: env.CAT_METRICS === 'on',
    metricsToken: env.CAT_METRICS_TOKEN,
    publicUrl,
    license,
    demoMode,
    demoTraffic: demoMode ? env.CAT_DEMO_TRAFFIC : 0,
    webhook: parseWebhook(env),
    logLevel: env.LOG_LEVEL,
  })
}

/** For commands: the configuration, or one line naming the bad variable and exit code 1. */
export function loadConfigOrExit(source: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(source)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
}
