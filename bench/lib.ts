/**
 * What the benchmark scenarios share: the contacts, the server child process, the load tools
 * (wrk in a process of its own for the measured loads, autocannon for paced ones and warm-ups),
 * percentiles. See bench/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { siteKeyPatterns } from '../src/presence/redis/keys.js'
import { signToken } from '../src/auth/tokens.js'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const MYSQL_URL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
export const PRESENCE_TIMEOUT_S = 75

export const BENCH_SECRET = 'bench-secret-0123456789abcdef'

export interface ServerSpec {
  kind: 'bare' | 'memory' | 'redis'
  site: string
  /** The Redis engine's Redis; REDIS_URL when absent. */
  redisUrl?: string
  /** The Redis engine on a Redis Cluster instead (REDIS_CLUSTER_NODES). */
  redisClusterNodes?: string
  /**
   * CAT_HEARTBEAT_INTERVAL_S and CAT_PRESENCE_TIMEOUT_S; 30 and PRESENCE_TIMEOUT_S when absent.
   * A beat more than the interval + 10 s after the contact's previous one is late (the full
   * script, a `gap` event), one after the timeout a join: see the heartbeat scenario.
   */
  timing?: { heartbeatIntervalS: number; presenceTimeoutS: number }
  /** Contacts online (one visible tab each) and consented when the server is ready. */
  online?: number
  /** Contacts consented but not online: `prefix-0` … (they join during the scenario). */
  consented?: { prefix: string; count: number }
  /**
   * The expiry scenario: the online contacts' tabs expire `expiringPerS` per second from
   * `expiryStartS` seconds after `ready` on. The server's clock runs ahead of the wall clock by
   * the `clockOffsetMs` it reports, so seeding takes as long as it takes.
   */
  expiry?: { expiringPerS: number; expiryStartS: number }
  diffIntervalMs?: number
  sweepIntervalMs?: number
  /** Metrics and rate limits: on (the defaults) unless false, then CAT_METRICS=off and every CAT_RATE_LIMIT_* 0. */
  operations?: boolean
}

/** The contacts every scenario uses: the same ids, names and tabs in the server and the load. */
export function contactId(j: number): string {
  return `contact-${j}`
}
export function tabId(j: number): string {
  return `tab${String(j).padStart(8, '0')}`
}
export function contactClaims(j: number): { sub: string; clientId: string; name: string; company: string } {
  return { sub: contactId(j), clientId: `client-${j % 1000}`, name: `Contact ${j}`, company: `Company ${j % 1000}` }
}

export function clientToken(j: number, nowMs = Date.now()): string {
  return signToken({ aud: 'client', ...contactClaims(j), ttlS: 6 * 3600 }, [BENCH_SECRET], nowMs)
}

/**
 * Each contact's heartbeat request, with its own token and tab, in contact order. `nav`: two
 * rounds with different pages, so every request, taken in turn, is a page change.
 */
export function heartbeatPaths(tokens: readonly string[], event: 'beat' | 'nav'): string[] {
  const pages = event === 'nav' ? ['%2Fclients%2Finvoices', '%2Fclients%2Ftickets'] : ['%2Fclients%2Ftickets']
  return pages.flatMap((page) => tokens.map((token, j) => `/cat_heartbeat?token=${token}&sid=${tabId(j)}&path=${page}&title=Support%20tickets&event=${event}`))
}

export function adminToken(nowMs = Date.now()): string {
  return signToken({ aud: 'admin', sub: 'bench-staff', name: 'Bench', ttlS: 6 * 3600 }, [BENCH_SECRET], nowMs)
}

/**
 * Node's options for every bench server, bare included: those production runs with, read from
 * `npm start` (the Dockerfile has the same). BENCH_NODE_ARGS replaces them.
 */
export const SERVER_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? startNodeArgs()).split(' ').filter(Boolean)

/** The options between `node` and the script in package.json's start script. */
export function startNodeArgs(): string {
  const { scripts } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  const match = /^node((?: --?[\w-]+(?:=\S+)?)*) \S+$/.exec(scripts.start)
  if (match === null) throw new Error(`package.json start script is not "node [options] script": ${scripts.start}`)
  return (match[1] ?? '').trim()
}

export interface BenchServer {
  port: number
  /** How far the server's clock runs ahead of the wall clock, ms. */
  clockOffsetMs: number
  /** The expiry scenario: wall-clock ms at which the first tab expires. */
  expiryStartsAt: number
  child: ChildProcess
  stop(): Promise<void>
}

/**
 * Starts bench/server.ts in a child process; resolves once it is seeded and listening. `cwd`:
 * another checkout's server (an A/B of two commits, bench/cpu.ts).
 */
export async function startServer(spec: ServerSpec, nodeArgs: string[] = SERVER_NODE_ARGS, cwd?: string): Promise<BenchServer> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'bench/server.ts', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'], cwd })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  for await (const line of lines) {
    if (!line.startsWith('ready ')) continue
    const { port, clockOffsetMs, expiryStartsAt } = JSON.parse(line.slice(6)) as { port: number; clockOffsetMs: number; expiryStartsAt?: number }
    return {
      port,
      clockOffsetMs,
      expiryStartsAt: expiryStartsAt ?? 0,
      child,
      async stop() {
        if (child.exitCode === null) child.kill('SIGTERM')
        await exited
      },
    }
  }
  throw new Error(`the ${spec.kind} bench server did not start`)
}

export interface LoadResult {
  rps: number
  /** CPU time (user + system) the server process spent per request, µs: steadier than req/s on a shared machine. */
  serverCpuUs?: number
  p50: number
  p99: number
  /** Requests that failed or answered other than 2xx. */
  errors: number
  requests: number
}

/**
 * Where the next load of each server goes on in each list of paths: a timed load that sends
 * fewer requests than there are paths leaves the rest for the next one, so every contact keeps
 * beating across rounds (none expires because each round began again at the first).
 */
const cursors = new WeakMap<readonly string[], Map<number, number>>()

/**
 * autocannon against `port`, each request taking the next of `paths` (going on from the
 * previous load of this server with these paths). `rate` caps the requests per second across
 * all connections (the latency-at-a-given-rate measure).
 */
export async function load(port: number, paths: readonly string[], options: { connections: number; durationS?: number; amount?: number; rate?: number; pid?: number }): Promise<LoadResult> {
  let byPort = cursors.get(paths)
  if (byPort === undefined) cursors.set(paths, (byPort = new Map()))
  let i = byPort.get(port) ?? 0
  const cpuBefore = options.pid === undefined ? 0 : processCpuMs(options.pid)
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    ...(options.amount === undefined ? { duration: options.durationS } : { amount: options.amount }),
    ...(options.rate === undefined ? {} : { overallRate: Math.max(1, Math.round(options.rate)) }),
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] as string }) }],
  })
  byPort.set(port, i % paths.length)
  const requests = result.requests.total
  const serverCpuUs = options.pid === undefined || requests === 0 ? undefined : round(((processCpuMs(options.pid) - cpuBefore) * 1000) / requests, 1)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx, requests, ...(serverCpuUs === undefined ? {} : { serverCpuUs }) }
}

/**
 * The file bench/heartbeat.lua takes its requests from: one line per contact, its own token and
 * tab (`token=…&sid=…`), the contacts in random order. Written to a fresh temporary directory.
 */
export function writeTokensFile(tokens: readonly string[]): string {
  const order = tokens.map((_, j) => j)
  for (let i = order.length - 1; i > 0; i -= 1) {
    const k = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[k]] = [order[k] as number, order[i] as number]
  }
  const file = join(mkdtempSync(join(tmpdir(), 'cat-bench-tokens-')), 'tokens.txt')
  writeFileSync(file, order.map((j) => `token=${tokens[j]}&sid=${tabId(j)}\n`).join(''))
  return file
}

export interface WrkResult {
  rps: number
  requests: number
  /** Connect, read, write and timeout errors, and answers other than 2xx/3xx. */
  errors: number
  /** Latency percentiles, ms (wrk measures in µs). */
  p50: number
  p99: number
  /** CPU time (user + system) of the server process over the load, per request, µs. */
  serverCpuUs?: number
  /** The same of the Redis server (`INFO cpu`), when a client of it is given. */
  redisCpuUs?: number
  /**
   * The same of the wrk process itself: what the load generator costs, of which `wrkSystemUs`
   * in the kernel (mostly the loopback TCP stack carrying the request to the server).
   */
  wrkCpuUs: number
  wrkSystemUs: number
}

const WRK_SCRIPT = new URL('./heartbeat.lua', import.meta.url).pathname

/** Where the next wrk load of each server goes on in each tokens file (as `cursors` for autocannon). */
const wrkCursors = new Map<string, number>()

/**
 * wrk, in a process of its own, against `port` for `durationS`: heartbeats of the contacts of
 * `tokensFile` in its (random) order, going on where the previous load of this server with this
 * file stopped (bench/heartbeat.lua). The server's CPU time (`pid`, from /proc) and Redis's
 * (`redis`, `INFO cpu`) are read just before wrk starts and just after it exits, so they cover
 * the load and, of the rest, only wrk's start and stop, when nothing is sent. `salt`: `nav`
 * pages new to every contact (see the script).
 */
export async function wrkLoad(port: number, tokensFile: string, options: { event: 'beat' | 'nav'; connections: number; durationS: number; threads?: number; salt?: string; pid?: number; redis?: Redis }): Promise<WrkResult> {
  const threads = options.threads ?? 1
  const cursorKey = `${port} ${tokensFile}`
  const start = wrkCursors.get(cursorKey) ?? 0
  const args = [`-t${threads}`, `-c${options.connections}`, `-d${options.durationS}s`, '-s', WRK_SCRIPT, `http://127.0.0.1:${port}`, '--', tokensFile, options.event, options.salt ?? '0', String(start), String(threads)]
  const redisBefore = options.redis === undefined ? 0 : await redisCpuMs(options.redis)
  const serverBefore = options.pid === undefined ? 0 : processCpuMs(options.pid)
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
    child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new Error('wrk is not installed: scripts/bench.sh installs it (apt-get install wrk)') : error))
    child.once('close', (exitCode) => resolve({ stdout: out, stderr: err, code: exitCode }))
  })
  const serverMs = options.pid === undefined ? 0 : processCpuMs(options.pid) - serverBefore
  const redisMs = options.redis === undefined ? 0 : (await redisCpuMs(options.redis)) - redisBefore
  const line = stdout.split('\n').find((l) => l.startsWith('wrk-result '))
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${code}): ${(stderr || stdout).trim().slice(-500)}`)
  const result = JSON.parse(line.slice('wrk-result '.length)) as { requests: number; durationUs: number; errors: Record<string, number>; latencyUs: { p50: number; p99: number }; cpuTicks: { user: number; system: number } }
  const requests = result.requests
  // Requests still in flight when wrk stopped (at most one a connection) reached the server
  // too: the next load sends those contacts again, which is harmless.
  wrkCursors.set(cursorKey, start + requests)
  const perRequest = (ms: number): number => round((ms * 1000) / Math.max(1, requests), 2)
  return {
    rps: requests / (result.durationUs / 1e6),
    requests,
    errors: Object.values(result.errors).reduce((a, b) => a + b, 0),
    p50: round(result.latencyUs.p50 / 1000, 2),
    p99: round(result.latencyUs.p99 / 1000, 2),
    wrkCpuUs: perRequest((result.cpuTicks.user + result.cpuTicks.system) * 10),
    wrkSystemUs: perRequest(result.cpuTicks.system * 10),
    ...(options.pid === undefined ? {} : { serverCpuUs: perRequest(serverMs) }),
    ...(options.redis === undefined ? {} : { redisCpuUs: perRequest(redisMs) }),
  }
}

export interface PrivateRedis {
  url: string
  stop(): Promise<void>
}

/**
 * A redis-server of the bench's own on a free loopback port, started as scripts/test-services.sh
 * starts the shared one (no snapshots, no AOF), so that Redis's CPU over a load is the load's
 * alone: the shared Redis on 6379 serves whatever else runs on the machine too.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const probe = createNetServer()
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const dir = mkdtempSync(join(tmpdir(), 'cat-bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const started = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new Error('redis-server is not installed: scripts/bench.sh installs it') : error))
    void exited.then(() => reject(new Error(`the bench's redis-server on port ${port} exited at start`)))
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) resolve()
    })
  })
  await started
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface PrivateCluster {
  /** `host:port` of each master. */
  masters: string[]
  /** REDIS_CLUSTER_NODES for the servers. */
  seeds: string
  stop(): Promise<void>
}

/**
 * A Redis Cluster of the bench's own: `masters` redis-servers on free loopback ports (no
 * replicas: the balance of the masters is measured), created with `redis-cli --cluster create`,
 * which splits the slots evenly among them; no other client's keys or commands count.
 */
export async function startPrivateCluster(masters = 3): Promise<PrivateCluster> {
  const ports: number[] = []
  while (ports.length < masters) {
    const probe = createNetServer()
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as { port: number }).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    // A node also listens on port + 10000 for the cluster bus.
    if (port < 55000 && !ports.includes(port)) ports.push(port)
  }
  const dir = mkdtempSync(join(tmpdir(), 'cat-bench-cluster-'))
  const children = ports.map((port) => {
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir)
    return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--save', '', '--appendonly', 'no', '--dir', nodeDir, '--logfile', join(nodeDir, 'log')], { stdio: 'ignore' })
  })
  const nodes = ports.map((port) => `127.0.0.1:${port}`)
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Each node answers once it listens: until then a connection fails and is tried again.
    for (const port of ports) {
      for (let attempt = 1; ; attempt += 1) {
        const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
        redis.on('error', () => {})
        const answered = await redis.connect().then(() => true, () => false)
        redis.disconnect()
        if (answered) break
        if (attempt >= 100) throw new Error(`the bench's cluster node on port ${port} did not start`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    const created = await new Promise<number | null>((resolve) => spawn('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' }).once('exit', resolve))
    if (created !== 0) throw new Error(`redis-cli --cluster create exited with ${created}`)
    for (;;) {
      const states = await Promise.all(ports.map(async (port) => {
        const redis = new Redis({ port, host: '127.0.0.1' })
        try {
          return /cluster_state:ok/.test(await redis.cluster('INFO'))
        } finally {
          redis.disconnect()
        }
      }))
      if (states.every(Boolean)) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { masters: nodes, seeds: nodes.join(','), stop }
}

/** The fields of /proc/PID/stat from the state (field 3) on: the command name before it may hold spaces. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** CPU time a process has used, user + system, ms (Linux /proc; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const fields = statFields(pid)
  // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * A process's minor page faults so far (field 10 of /proc/PID/stat): each first write to a
 * fresh page of memory costs one, a few microseconds of the kernel's time on this machine.
 */
export function processMinorFaults(pid: number): number {
  return Number(statFields(pid)[7])
}

/** The q-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

/** The run in the middle of `runs` by `value` (the upper one of an even count). */
export function medianBy<T>(runs: readonly T[], value: (run: T) => number): T {
  return [...runs].sort((a, b) => value(a) - value(b))[Math.floor(runs.length / 2)] as T
}

/** CPU time (user + system) the Redis server has used, ms (`INFO cpu`). */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const field = (name: string): number => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0)
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000
}

/** Deletes every key of a bench site. */
export async function cleanSite(site: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url)
  try {
    for (const pattern of siteKeyPatterns(site)) {
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) await redis.unlink(...keys)
      } while (cursor !== '0')
    }
  } finally {
    redis.disconnect()
  }
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/**
 * BENCH_PROFILE=DIR: a CPU profile of this process from here until the returned function is
 * called, written to DIR/<kind>-<pid>.cpuprofile; `bench/profile-summary.ts` reads it. SIGUSR2
 * starts it again. (A bench server profiles from `ready`, seeding left out, to SIGTERM.)
 */
export async function profileFromHere(kind: string): Promise<() => Promise<void>> {
  const dir = process.env.BENCH_PROFILE
  if (dir === undefined || dir === '') return async () => {}
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  // SIGUSR2 starts the profile afresh: a caller that warms the server first leaves the warm-up out.
  process.on('SIGUSR2', () => {
    void session.post('Profiler.stop').then(() => session.post('Profiler.start'))
    if (process.env.BENCH_HEAP === '1') void session.post('HeapProfiler.startSampling', { samplingInterval: 4096 })
  })
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(dir, { recursive: true })
    if (process.env.BENCH_HEAP === '1') {
      const heap = await session.post('HeapProfiler.getSamplingProfile')
      writeFileSync(join(dir, `${kind}-${process.pid}.heapprofile`), JSON.stringify(heap.profile))
    }
    writeFileSync(join(dir, `${kind}-${process.pid}.cpuprofile`), JSON.stringify(profile))
  }
}
