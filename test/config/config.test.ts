import { generateKeyPairSync } from 'node:crypto'
import { resolve } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/config.js'
import { runTs } from '../helpers/run-ts.js'

const SECRET_A = 'first-secret-0123456789'
const SECRET_B = 'second-secret-abcdefghij'

/** Runs loadConfig, expecting a ConfigError; returns its message. */
function configError(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
  throw new Error(`expected a ConfigError for ${Object.keys(env).join(', ')}`)
}

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.site, 'default')
  t.equal(config.heartbeatIntervalS, 30)
  t.equal(config.presenceTimeoutS, 75)
  t.equal(config.idleTimeoutS, 600)
  t.equal(config.diffIntervalMs, 100)
  t.equal(config.retentionDays, 90)
  t.equal(config.redisPartitions, 24)
  t.equal(config.logLevel, 'info')
  t.equal(config.dataDir, resolve('./data'))
  t.equal(config.redisUrl, undefined)
  t.equal(config.redisClusterNodes, undefined)
  t.equal(config.redisTimeoutMs, 1000)
  t.equal(config.databaseUrl, undefined)
  t.same(config.allowedOrigins, [])
  t.equal(config.production, false)
  t.equal(config.secretGenerated, true, 'a secret is generated in development')
  t.equal(config.secrets.length, 1)
  t.ok((config.secrets[0] ?? '').length >= 16, 'the generated secret is long enough to sign with')
  t.not(loadConfig({}).secrets[0], config.secrets[0], 'a fresh secret per start')
})

t.test('values are read from the environment', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    CAT_SECRET: SECRET_A,
    REDIS_URL: 'rediss://:pw@redis.example:6380/2',
    CAT_REDIS_TIMEOUT_MS: '250',
    CAT_REDIS_PARTITIONS: '12',
    DATABASE_URL: 'mysql://user:pass@db:3306/cat',
    CAT_DATA_DIR: '/var/lib/cat',
    CAT_SITE: 'portal-1.eu_west',
    CAT_HEARTBEAT_INTERVAL_S: '10',
    CAT_PRESENCE_TIMEOUT_S: '11',
    CAT_IDLE_TIMEOUT_S: '60',
    CAT_DIFF_INTERVAL_MS: '0',
    CAT_RETENTION_DAYS: '7',
    LOG_LEVEL: 'debug',
  })
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.same(config.secrets, [SECRET_A])
  t.equal(config.secretGenerated, false)
  t.equal(config.redisUrl, 'rediss://:pw@redis.example:6380/2')
  t.equal(config.redisTimeoutMs, 250)
  t.equal(config.redisPartitions, 12)
  t.equal(config.databaseUrl, 'mysql://user:pass@db:3306/cat')
  t.equal(config.dataDir, '/var/lib/cat')
  t.equal(config.site, 'portal-1.eu_west')
  t.equal(config.heartbeatIntervalS, 10)
  t.equal(config.presenceTimeoutS, 11)
  t.equal(config.idleTimeoutS, 60)
  t.equal(config.diffIntervalMs, 0)
  t.equal(config.retentionDays, 7)
  t.equal(config.logLevel, 'debug')
})

t.test('an empty value counts as unset', async (t) => {
  const config = loadConfig({
    PORT: '',
    HOST: '',
    CAT_SECRET: '',
    REDIS_URL: '',
    DATABASE_URL: '',
    CAT_DATA_DIR: '',
    CAT_SITE: '',
    CAT_ALLOWED_ORIGINS: '',
    CAT_HEARTBEAT_INTERVAL_S: '',
    CAT_PRESENCE_TIMEOUT_S: '  ',
    LOG_LEVEL: '',
  })
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.secretGenerated, true)
  t.equal(config.redisUrl, undefined)
  t.equal(config.databaseUrl, undefined)
  t.equal(config.dataDir, resolve('./data'))
  t.equal(config.site, 'default')
  t.same(config.allowedOrigins, [])
  t.equal(config.heartbeatIntervalS, 30)
  t.equal(config.presenceTimeoutS, 75)
  t.equal(config.logLevel, 'info')
  t.equal(loadConfig({ NODE_ENV: 'production', CAT_SECRET: SECRET_A, PORT: '' }).port, 3000, 'empty PORT in production too')
})

t.test('every bad value stops the start with one line naming the variable', async (t) => {
  const cases: [string, NodeJS.ProcessEnv][] = [
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '-1' }],
    ['PORT', { PORT: '1e3' }],
    ['DATABASE_URL', { DATABASE_URL: 'postgres://x/y' }],
    ['REDIS_URL', { REDIS_URL: 'http://x' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'redis-1' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '10.0.0.1:70000' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: '10.0.0.1:0' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'http://10.0.0.1:7000' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'redis://10.0.0.1:7000/2' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'redis://10.0.0.1:7000?db=1' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'redis://:7000' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: ' , ' }],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'rediss://a:6379,b:6379' }],
    ['CAT_REDIS_TIMEOUT_MS', { CAT_REDIS_TIMEOUT_MS: '0' }],
    ['CAT_REDIS_PARTITIONS', { CAT_REDIS_PARTITIONS: '0' }],
    ['CAT_REDIS_PARTITIONS', { CAT_REDIS_PARTITIONS: '257' }],
    ['CAT_REDIS_PARTITIONS', { CAT_REDIS_PARTITIONS: '8.5' }],
    ['CAT_REDIS_TIMEOUT_MS', { CAT_REDIS_TIMEOUT_MS: '1s' }],
    ['CAT_PRESENCE_TIMEOUT_S', { CAT_PRESENCE_TIMEOUT_S: '30' }],
    ['CAT_PRESENCE_TIMEOUT_S', { CAT_HEARTBEAT_INTERVAL_S: '100', CAT_PRESENCE_TIMEOUT_S: '99' }],
    ['CAT_IDLE_TIMEOUT_S', { CAT_IDLE_TIMEOUT_S: '30' }],
    ['CAT_IDLE_TIMEOUT_S', { CAT_HEARTBEAT_INTERVAL_S: '60', CAT_PRESENCE_TIMEOUT_S: '120', CAT_IDLE_TIMEOUT_S: '45' }],
    ['CAT_HEARTBEAT_INTERVAL_S', { CAT_HEARTBEAT_INTERVAL_S: '2.5' }],
    ['CAT_RETENTION_DAYS', { CAT_RETENTION_DAYS: '0' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['CAT_SITE', { CAT_SITE: 'my site' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'https://portal.example.com/clients' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'not a url' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'ftp://files.example.com' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'https://ok.example, https://portal.example.com?x=1' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'https://portal.example.com#admin' }],
    ['CAT_ALLOWED_ORIGINS', { CAT_ALLOWED_ORIGINS: 'https://user@portal.example.com' }],
    ['CAT_SECRET', { CAT_SECRET: 'short' }],
  ]
  for (const [name, env] of cases) {
    const message = configError(env)
    t.ok(message.startsWith(`${name}:`), `${JSON.stringify(env)} is refused naming ${name}: ${message}`)
    t.notMatch(message, /[\r\n]/, `${name}: the message is one line`)
  }
})

t.test('a timeout just above the interval is accepted', async (t) => {
  const config = loadConfig({ CAT_HEARTBEAT_INTERVAL_S: '30', CAT_PRESENCE_TIMEOUT_S: '31', CAT_IDLE_TIMEOUT_S: '31' })
  t.equal(config.presenceTimeoutS, 31)
  t.equal(config.idleTimeoutS, 31)
})

t.test('production requires CAT_SECRET', async (t) => {
  const message = configError({ NODE_ENV: 'production' })
  t.match(message, /^CAT_SECRET:/)
  t.notMatch(message, /[\r\n]/)
  t.match(configError({ NODE_ENV: 'production', CAT_SECRET: '' }), /^CAT_SECRET:/, 'an empty secret is unset')
  const config = loadConfig({ NODE_ENV: 'production', CAT_SECRET: SECRET_A })
  t.equal(config.production, true)
  t.equal(config.secretGenerated, false)
  t.same(config.secrets, [SECRET_A])
})

t.test('secrets and URLs never appear in the error message', async (t) => {
  const shortSecret = 'tooShortPw42'
  const secretMessage = configError({ CAT_SECRET: shortSecret })
  t.match(secretMessage, /^CAT_SECRET:/)
  t.notOk(secretMessage.includes(shortSecret), 'the short secret is not shown')

  const rotated = configError({ CAT_SECRET: `${SECRET_A},leakyPw` })
  t.match(rotated, /^CAT_SECRET:/, 'one short secret in the list is refused')
  t.notOk(rotated.includes('leakyPw'), 'the short secret is not shown')
  t.notOk(rotated.includes(SECRET_A), 'the good secret is not shown')

  const db = configError({ DATABASE_URL: 'postgres://admin:DbPassw0rdXYZ@db.example:5432/cat' })
  t.match(db, /^DATABASE_URL:/)
  t.notOk(db.includes('DbPassw0rdXYZ'), 'the database password is not shown')

  const redis = configError({ REDIS_URL: 'http://:RedisPassw0rdXYZ@cache.example:6379' })
  t.match(redis, /^REDIS_URL:/)
  t.notOk(redis.includes('RedisPassw0rdXYZ'), 'the redis password is not shown')

  const origin = configError({ CAT_ALLOWED_ORIGINS: 'https://user:OriginPassw0rd@portal.example.com/x' })
  t.match(origin, /^CAT_ALLOWED_ORIGINS:/)
  t.notOk(origin.includes('OriginPassw0rd'), 'credentials in an origin are not shown')

  // An error about another variable must not drag the secret along.
  const other = configError({ CAT_SECRET: SECRET_A, PORT: 'abc' })
  t.match(other, /^PORT:/)
  t.notOk(other.includes(SECRET_A))
})

t.test('a comma list of secrets is split in order', async (t) => {
  const config = loadConfig({ CAT_SECRET: `${SECRET_A}, ${SECRET_B}` })
  t.same(config.secrets, [SECRET_A, SECRET_B], 'first signs, order kept, spaces trimmed')
  t.equal(config.secretGenerated, false)
  t.same(loadConfig({ CAT_SECRET: `${SECRET_B},${SECRET_A}` }).secrets, [SECRET_B, SECRET_A])
})

t.test('allowed origins are normalised', async (t) => {
  const config = loadConfig({
    CAT_ALLOWED_ORIGINS: ' https://Portal.Example.com/ ,http://localhost:8080,, https://admin.example.com:443 ',
  })
  t.same(config.allowedOrigins, ['https://portal.example.com', 'http://localhost:8080', 'https://admin.example.com'])
})

t.test('the returned object is frozen', async (t) => {
  const config = loadConfig({ CAT_SECRET: `${SECRET_A},${SECRET_B}`, CAT_ALLOWED_ORIGINS: 'https://a.example' })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.secrets))
  t.ok(Object.isFrozen(config.allowedOrigins))
  t.throws(() => {
    ;(config as { port: number }).port = 1
  }, TypeError, 'assigning throws in strict mode')
  t.throws(() => {
    ;(config.secrets as string[]).push('x')
  }, TypeError)
  t.equal(config.port, 3000)
  t.equal(config.secrets.length, 2)
})

t.test('REDIS_CLUSTER_NODES is parsed into seed nodes', async (t) => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b.internal:7001 ,[::1]:7002,, redis://10.0.0.4:6379/ ' })
  t.equal(config.redisUrl, undefined)
  t.same(config.redisClusterNodes, [
    { host: '10.0.0.1', port: 7000, tls: false, username: undefined, password: undefined },
    { host: 'redis-b.internal', port: 7001, tls: false, username: undefined, password: undefined },
    { host: '::1', port: 7002, tls: false, username: undefined, password: undefined },
    { host: '10.0.0.4', port: 6379, tls: false, username: undefined, password: undefined },
  ])
  t.ok(Object.isFrozen(config.redisClusterNodes), 'the list is frozen')
  t.ok(Object.isFrozen(config.redisClusterNodes?.[0]), 'each node is frozen')

  const secured = loadConfig({ REDIS_CLUSTER_NODES: 'rediss://cat:p%40ss%2Cw0rd@a.example:6380,rediss://b.example:6380' })
  t.same(secured.redisClusterNodes, [
    { host: 'a.example', port: 6380, tls: true, username: 'cat', password: 'p@ss,w0rd' },
    { host: 'b.example', port: 6380, tls: true, username: 'cat', password: 'p@ss,w0rd' },
  ], 'TLS and the percent-decoded credentials apply to every seed node')
  t.same(loadConfig({ REDIS_CLUSTER_NODES: 'redis://:onlyPassw0rd@a:7000' }).redisClusterNodes, [
    { host: 'a', port: 7000, tls: false, username: undefined, password: 'onlyPassw0rd' },
  ], 'a password without a user name (AUTH password)')
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '' }).redisClusterNodes, undefined, 'empty is unset')
})

t.test('REDIS_CLUSTER_NODES and REDIS_URL together stop the start', async (t) => {
  const message = configError({ REDIS_URL: 'redis://:UrlPassw0rd@127.0.0.1:6379', REDIS_CLUSTER_NODES: 'redis://:NodePassw0rd@127.0.0.1:7000' })
  t.match(message, /^REDIS_URL and REDIS_CLUSTER_NODES: both are set; only one of them may be/)
  t.notMatch(message, /[\r\n]/, 'one line')
  t.notOk(message.includes('UrlPassw0rd') || message.includes('NodePassw0rd'), 'no password is shown')
  t.equal(loadConfig({ REDIS_URL: '', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).redisClusterNodes?.length, 1, 'an empty REDIS_URL is unset')
})

t.test('a bad REDIS_CLUSTER_NODES entry is named, its credentials never shown', async (t) => {
  t.equal(
    configError({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,cache-b' }),
    'REDIS_CLUSTER_NODES: expected a comma list of host:port or redis://[user:pass@]host:port (or rediss://) seed nodes, got "cache-b"',
    'the bad entry is named, not the whole list',
  )
  const withPassword = configError({ REDIS_CLUSTER_NODES: 'redis://cat:ClusterPassw0rd@10.0.0.1:7000/3' })
  t.match(withPassword, /^REDIS_CLUSTER_NODES: expected host:port seed nodes without a database/)
  t.notOk(withPassword.includes('ClusterPassw0rd'), 'the password is not shown')
  const differing = configError({ REDIS_CLUSTER_NODES: 'redis://cat:FirstPassw0rd@a:7000,redis://cat:SecondPassw0rd@b:7000' })
  t.match(differing, /^REDIS_CLUSTER_NODES: expected the same user and password on every seed node/)
  t.notOk(differing.includes('FirstPassw0rd') || differing.includes('SecondPassw0rd'), 'neither password is shown')
  t.match(configError({ REDIS_CLUSTER_NODES: 'rediss://a:7000,redis://b:7000' }), /^REDIS_CLUSTER_NODES: expected one scheme for every seed node/)
})

t.test('CAT_REDIS_WAIT_REPLICAS: 1 on a cluster and 0 on one Redis unless set; bad values are named', async (t) => {
  t.equal(loadConfig({}).redisWaitReplicas, 0, 'no Redis: none')
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisWaitReplicas, 0, 'one Redis: none')
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).redisWaitReplicas, 1, 'a cluster: one replica')
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', CAT_REDIS_WAIT_REPLICAS: '0' }).redisWaitReplicas, 0, '0 turns it off')
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', CAT_REDIS_WAIT_REPLICAS: '' }).redisWaitReplicas, 1, 'empty is unset')
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', CAT_REDIS_WAIT_REPLICAS: '2' }).redisWaitReplicas, 2, 'one Redis with replicas')
  for (const value of ['-1', '11', 'one', '1.5']) {
    t.equal(configError({ CAT_REDIS_WAIT_REPLICAS: value }), `CAT_REDIS_WAIT_REPLICAS: expected a whole number of replicas, 0-10, got ${JSON.stringify(value)}`)
  }
})

t.test('CAT_TRUST_PROXY: addresses and CIDRs of both families, none by default', async (t) => {
  t.same(loadConfig({}).trustProxy, [], 'none by default: X-Forwarded-For is ignored')
  t.same(loadConfig({ CAT_TRUST_PROXY: '' }).trustProxy, [], 'empty is none')
  const config = loadConfig({ CAT_TRUST_PROXY: ' 10.0.0.5 ,10.1.0.0/16,, fd00::/8,::1, 2001:db8:aa::/48 ' })
  t.same(config.trustProxy, ['10.0.0.5', '10.1.0.0/16', 'fd00::/8', '::1', '2001:db8:aa::/48'], 'trimmed, empty entries dropped, order kept')
  t.ok(Object.isFrozen(config.trustProxy))
})

t.test('CAT_TRUST_PROXY: a bad entry stops the start with one line naming the variable and the entry', async (t) => {
  for (const bad of ['proxy.internal', '10.0.0.0/33', '10.0.0.0/0', 'fd00::/129', '10.0.0.0/255.0.0.0', '1.2.3', 'fe80::1%eth0', '10.0.0.0/8/9', '10.0.0.1, 300.1.2.3', '10.0.0.0/x']) {
    const message = configError({ CAT_TRUST_PROXY: bad })
    const entry = bad.split(',').at(-1)?.trim() ?? ''
    t.equal(message, `CAT_TRUST_PROXY: expected a comma list of IP addresses or CIDRs such as 10.0.0.5,10.1.0.0/16,fd00::/8, got ${JSON.stringify(entry)}`, bad)
  }
  const started = await runTs('src/main.ts', [], { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', CAT_TRUST_PROXY: '10.0.0.0/8,proxy.internal', LOG_LEVEL: 'silent' })
  t.equal(started.code, 1, 'the server does not start')
  t.equal(started.stderr, 'CAT_TRUST_PROXY: expected a comma list of IP addresses or CIDRs such as 10.0.0.5,10.1.0.0/16,fd00::/8, got "proxy.internal"\n', 'one line on stderr')
  t.equal(started.stdout, '', 'nothing on stdout')
})

t.test('licensing is off unless CAT_LICENSE_SERVER_URL is set; with it the public URL and the vendor key are required', async (t) => {
  const { publicKey } = generateKeyPairSync('ed25519')
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const der = publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  t.equal(loadConfig({}).license, undefined)
  t.equal(loadConfig({ CAT_PUBLIC_URL: 'https://presence.example.com' }).license, undefined, 'a public URL alone turns nothing on')
  const on = { CAT_LICENSE_SERVER_URL: 'https://licenses.example.com/', CAT_PUBLIC_URL: 'https://Presence.Example.com:8443/cat/', CAT_LICENSE_PUBLIC_KEY: der }
  const license = loadConfig(on).license
  t.equal(license?.serverUrl, 'https://licenses.example.com')
  t.equal(license?.domain, 'presence.example.com', "the public URL's host, lower case")
  t.equal(license?.key, undefined)
  t.equal(license?.publicKey.asymmetricKeyType, 'ed25519')
  t.equal(loadConfig({ ...on, CAT_LICENSE_PUBLIC_KEY: pem }).license?.publicKey.asymmetricKeyType, 'ed25519', 'PEM too')
  t.equal(loadConfig({ ...on, CAT_LICENSE_PUBLIC_KEY: pem.replace(/\n/g, '\\n') }).license?.publicKey.asymmetricKeyType, 'ed25519', 'PEM with escaped line breaks')
  t.equal(loadConfig({ ...on, CAT_LICENSE_KEY: 'CAT-abcd-1234' }).license?.key, 'CAT-abcd-1234')
  t.equal(loadConfig({ ...on, CAT_LICENSE_SERVER_URL: 'http://127.0.0.1:4000' }).license?.serverUrl, 'http://127.0.0.1:4000', 'plain HTTP to loopback')

  const { publicKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const cases: [Record<string, string>, RegExp][] = [
    [{ ...on, CAT_PUBLIC_URL: '' }, /^CAT_PUBLIC_URL: required when CAT_LICENSE_SERVER_URL is set/],
    [{ ...on, CAT_LICENSE_PUBLIC_KEY: '' }, /^CAT_LICENSE_PUBLIC_KEY: required/],
    [{ ...on, CAT_LICENSE_PUBLIC_KEY: 'bm90IGEga2V5' }, /^CAT_LICENSE_PUBLIC_KEY: expected an Ed25519 public key/],
    [{ ...on, CAT_LICENSE_PUBLIC_KEY: rsa.export({ type: 'spki', format: 'der' }).toString('base64') }, /^CAT_LICENSE_PUBLIC_KEY: expected an Ed25519 public key.*rsa/],
    [{ ...on, CAT_LICENSE_SERVER_URL: 'http://licenses.example.com' }, /^CAT_LICENSE_SERVER_URL: expected an https:\/\/ URL/],
    [{ ...on, CAT_LICENSE_SERVER_URL: 'ftp://x' }, /^CAT_LICENSE_SERVER_URL: expected/],
    [{ ...on, CAT_PUBLIC_URL: 'presence.example.com' }, /^CAT_PUBLIC_URL: expected/],
    [{ ...on, CAT_LICENSE_KEY: 'short' }, /^CAT_LICENSE_KEY: expected 8-128 characters.*\(hidden\)$/],
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), message, Object.keys(env).find((k) => env[k] !== on[k as keyof typeof on]) ?? 'case')
})

t.test('CAT_DEMO_MODE and CAT_DEMO_TRAFFIC', async (t) => {
  t.equal(loadConfig({}).demoMode, false)
  t.equal(loadConfig({}).demoTraffic, 0)
  for (const on of ['1', 'on', 'true']) t.equal(loadConfig({ CAT_DEMO_MODE: on }).demoMode, true, on)
  for (const off of ['0', 'off', 'false']) t.equal(loadConfig({ CAT_DEMO_MODE: off }).demoMode, false, off)
  t.equal(loadConfig({ CAT_DEMO_MODE: '1', CAT_DEMO_TRAFFIC: '50' }).demoTraffic, 50)
  t.throws(() => loadConfig({ CAT_DEMO_MODE: 'yes' }), /^CAT_DEMO_MODE: expected 1 or 0/)
  t.throws(() => loadConfig({ CAT_DEMO_MODE: '1', CAT_DEMO_TRAFFIC: '10001' }), /^CAT_DEMO_TRAFFIC: expected a whole number of simulated contacts, 0-10000/)
  t.throws(() => loadConfig({ CAT_DEMO_TRAFFIC: '5' }), /^CAT_DEMO_TRAFFIC: simulated contacts need CAT_DEMO_MODE=1/)
})

t.test('CAT_WEBHOOK_URL, CAT_WEBHOOK_SECRET and CAT_WEBHOOK_DEBOUNCE_S', async (t) => {
  const secret = 'webhook-secret-0123456789'
  t.equal(loadConfig({}).webhook, undefined, 'off by default')
  t.strictSame(loadConfig({ CAT_WEBHOOK_URL: 'https://crm.example.com/client_activity_tracker/cat_webhook', CAT_WEBHOOK_SECRET: secret }).webhook, {
    url: 'https://crm.example.com/client_activity_tracker/cat_webhook',
    secret,
    debounceMs: 5000,
  })
  t.equal(loadConfig({ CAT_WEBHOOK_URL: 'http://127.0.0.1:8080/hook?x=1', CAT_WEBHOOK_SECRET: secret, CAT_WEBHOOK_DEBOUNCE_S: '0' }).webhook?.debounceMs, 0)
  t.throws(() => loadConfig({ CAT_WEBHOOK_URL: 'https://crm.example.com/hook' }), /^CAT_WEBHOOK_SECRET: required when CAT_WEBHOOK_URL is set/)
  t.throws(() => loadConfig({ CAT_WEBHOOK_SECRET: secret }), /^CAT_WEBHOOK_SECRET: set without CAT_WEBHOOK_URL/)
  for (const bad of ['ftp://crm.example.com/hook', 'crm.example.com', 'https://user:pass@crm.example.com/hook', 'https://crm.example.com/hook#x']) {
    t.throws(() => loadConfig({ CAT_WEBHOOK_URL: bad, CAT_WEBHOOK_SECRET: secret }), /^CAT_WEBHOOK_URL: expected an http:\/\/ or https:\/\/ URL.*\(hidden\)$/, bad)
  }
  const short = 'short-secret'
  t.throws(() => loadConfig({ CAT_WEBHOOK_URL: 'https://crm.example.com/hook', CAT_WEBHOOK_SECRET: short }), /^CAT_WEBHOOK_SECRET: expected a secret of at least 16 characters, got \(hidden\)$/)
  for (const bad of ['3601', '-1', 'five']) {
    t.throws(() => loadConfig({ CAT_WEBHOOK_URL: 'https://crm.example.com/hook', CAT_WEBHOOK_SECRET: secret, CAT_WEBHOOK_DEBOUNCE_S: bad }), /^CAT_WEBHOOK_DEBOUNCE_S: expected whole seconds, 0-3600/, bad)
  }
})
