/**
 * Machinery of the fault suite (test/faults): a private redis-server to kill, freeze and
 * restart, bounded heartbeat load over real sockets, percentiles and the `# figures:` lines.
 * Every load loop here is bounded in count and in time and targets 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import WebSocket from 'ws'

interface Teardown {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A TCP port free on 127.0.0.1 at the time of the call. */
/**
 * A fault probe's load beats a few contacts hundreds of times a minute, far above what a portal
 * sends: the per-contact heartbeat limit (test/routes/rate-limits.test.ts) is off for it.
 */
export const UNLIMITED_HEARTBEATS = { CAT_RATE_LIMIT_HEARTBEATS: '0' } as const

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Resolves once something answers PING with PONG on the port; rejects after `timeoutMs`. */
async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      let text = ''
      socket.setTimeout(500, () => socket.destroy())
      socket.on('connect', () => socket.write('PING\r\n'))
      socket.on('data', (chunk) => {
        text += chunk.toString()
        if (text.includes('\r\n')) socket.end()
      })
      socket.on('close', () => resolve(text.startsWith('+PONG')))
      socket.on('error', () => {})
    })
    if (answered) return
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`)
    await sleep(50)
  }
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** The running server's pid (changes on restart). */
  readonly pid: number
  /** Kills the server with SIGKILL: no save, no goodbye to its clients. */
  kill(): Promise<void>
  /** Starts it again on the same port and directory (with persistence, it reloads its AOF). */
  start(): Promise<void>
  /** SIGSTOP: the server keeps its sockets open and answers nothing. */
  freeze(): void
  /** SIGCONT. */
  thaw(): void
}

/**
 * A redis-server of the test's own on a free port, killed at teardown. `persistence` turns on
 * the append-only file with an fsync per write, so a SIGKILL loses nothing it acknowledged;
 * without it the server keeps nothing across a restart.
 */
export async function startRedisServer(t: Teardown, options: { persistence?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'cat-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning', '--logfile', '']
  args.push(...(options.persistence === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']))
  let child: ChildProcess | undefined
  let frozen = false

  const start = async (): Promise<void> => {
    const current = spawn('redis-server', args, { stdio: 'ignore' })
    child = current
    current.on('error', () => {})
    await waitForPong(port, 10_000)
  }
  const kill = async (): Promise<void> => {
    const current = child
    child = undefined
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
    const exited = once(current, 'exit')
    if (frozen) current.kill('SIGCONT')
    frozen = false
    current.kill('SIGKILL')
    await exited
  }
  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? 0
    },
    kill,
    start,
    freeze() {
      frozen = true
      child?.kill('SIGSTOP')
    },
    thaw() {
      frozen = false
      child?.kill('SIGCONT')
    },
  }
}

/** The nearest-rank percentile of `values` (ms); 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round((sorted[rank] as number) * 10) / 10
}

/** Resident set size in MiB: this process's, or another's from /proc. */
export function rssMiB(pid?: number): number {
  if (pid === undefined) return Math.round(process.memoryUsage().rss / 1048576)
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1]
    return kb === undefined ? 0 : Math.round(Number(kb) / 1024)
  } catch {
    return 0
  }
}

export type Figures = Record<string, string | number | boolean>

/**
 * Prints one `# figures: <probe> key=value …` line (a TAP comment), and appends it as JSON to
 * the file named by CAT_FIGURES_FILE when set (the README's reliability table is built from it).
 */
export function printFigures(t: Teardown, probe: string, figures: Figures): void {
  const line = Object.entries(figures).map(([key, value]) => `${key}=${value}`).join(' ')
  t.comment(`figures: ${probe} ${line}`)
  const file = process.env.CAT_FIGURES_FILE
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify({ probe, ...figures })}\n`)
}

export interface Sent {
  /** The request's index in its loop. */
  i: number
  path: string
  status: number
  /** ms from send to the response head (or to the error). */
  ms: number
  retryAfter: string | undefined
  body: string
  /** At which ms since the loop started the answer came. */
  at: number
  /** The network error, when there was no response. */
  error?: string
}

export interface LoadOptions {
  /** The server's base URL; must be http://127.0.0.1:PORT. */
  origin: string
  /** Builds request `i` (a path and query, GET unless `method` is given). */
  request(i: number): { path: string; method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } | undefined
  /** The loop stops after this many requests … */
  maxRequests: number
  /** … or after this long, whichever comes first. */
  durationMs: number
  /** Requests in flight at once. */
  concurrency?: number
  /** A request without an answer after this long counts as an error (ms). */
  timeoutMs?: number
  /** Pause between two requests of one worker (ms). */
  gapMs?: number
  /** Awaited before each request: a test pauses the load here. */
  gate?: () => Promise<void>
  /** Kept up to date with the number of requests in flight. */
  track?: { inFlight: number }
  /** Stops the loop early when it returns true. */
  stop?: () => boolean
  onResponse?(sent: Sent): void
}

export interface LoadResult {
  sent: Sent[]
  /** Count per status; 0 stands for a network error or timeout. */
  statuses: Record<number, number>
  latencies: number[]
  elapsedMs: number
}

export function countStatuses(sent: readonly Sent[]): Record<number, number> {
  const statuses: Record<number, number> = {}
  for (const s of sent) statuses[s.status] = (statuses[s.status] ?? 0) + 1
  return statuses
}

/** Sends requests to a local server over real keep-alive sockets until a bound is reached. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.origin)
  if (url.hostname !== '127.0.0.1') throw new Error('load targets 127.0.0.1 only')
  const concurrency = options.concurrency ?? 4
  const timeoutMs = options.timeoutMs ?? 10_000
  const pool = new Pool(url.origin, { connections: concurrency, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 2_000 })
  const sent: Sent[] = []
  const started = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      if (options.gate !== undefined) await options.gate()
      if (next >= options.maxRequests || performance.now() - started >= options.durationMs || options.stop?.() === true) return
      const i = next
      next += 1
      const spec = options.request(i)
      if (spec === undefined) return
      const t0 = performance.now()
      let record: Sent
      if (options.track !== undefined) options.track.inFlight += 1
      try {
        const res = await pool.request({ path: spec.path, method: spec.method ?? 'GET', headers: spec.headers, body: spec.body })
        const ms = performance.now() - t0
        const body = await res.body.text()
        const retryAfter = res.headers['retry-after']
        record = { i, path: spec.path, status: res.statusCode, ms, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body, at: performance.now() - started }
      } catch (error) {
        record = { i, path: spec.path, status: 0, ms: performance.now() - t0, retryAfter: undefined, body: '', at: performance.now() - started, error: (error as Error).message }
      }
      if (options.track !== undefined) options.track.inFlight -= 1
      sent.push(record)
      options.onResponse?.(record)
      // A refused connection answers at once: pause so a dead server is not spun against.
      const gap = record.status === 0 ? Math.max(options.gapMs ?? 0, 10) : options.gapMs ?? 0
      if (gap > 0) await sleep(gap)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()))
  await pool.close().catch(() => {})
  return { sent, statuses: countStatuses(sent), latencies: sent.filter((s) => s.status !== 0).map((s) => s.ms), elapsedMs: Math.round(performance.now() - started) }
}

/** A gate for runLoad: closed, requests wait until it opens. */
export function createGate(): { wait: () => Promise<void>; close(): void; open(): void } {
  let pending: Promise<void> | undefined
  let release: (() => void) | undefined
  return {
    wait: () => pending ?? Promise.resolve(),
    close() {
      if (pending !== undefined) return
      pending = new Promise((resolve) => (release = resolve))
    },
    open() {
      pending = undefined
      release?.()
      release = undefined
    },
  }
}

/** Polls `check` until it returns true; false when `timeoutMs` passed first. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
}

export { sleep }

/** True when a body is the documented error format `{"error":{"code","message"}}`. */
export function isErrorBody(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }
    return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string' && Object.keys(parsed).length === 1
  } catch {
    return false
  }
}

/** Records `granted` for a token's contact over HTTP, as the snippet does after Accept. */
export async function grantConsent(origin: string, token: string): Promise<void> {
  const pool = new Pool(origin, { connections: 1 })
  try {
    const res = await pool.request({ path: '/clients/cat_consent', method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token, decision: 'granted', version: 'fault-suite', locale: 'en' }) })
    const text = await res.body.text()
    if (res.statusCode !== 204) throw new Error(`consent answered ${res.statusCode}: ${text}`)
  } finally {
    await pool.close()
  }
}

export interface WrittenCheck {
  /** Acknowledged (204) events found in the activity log. */
  written: number
  /** Acknowledged events not in it. */
  lost: number
  /** Extra rows beyond one per event. */
  duplicates: number
}

/**
 * The `end` events in the durable log, counted per contact; with `expected`, read again (for up
 * to `timeoutMs`) until each of those contacts has one.
 */
export async function endCounts(databaseUrl: string, expected: readonly string[] = [], timeoutMs = 30_000): Promise<Map<string, number>> {
  const { createConnection } = await import('mysql2/promise')
  const connection = await createConnection({ uri: databaseUrl, connectTimeout: 5000 })
  try {
    const read = async (): Promise<Map<string, number>> => {
      const [rows] = await connection.query("SELECT contact_id AS contactId, COUNT(*) AS n FROM cat_events WHERE type = 'end' GROUP BY contact_id")
      return new Map((rows as { contactId: string; n: number }[]).map((row) => [row.contactId, Number(row.n)]))
    }
    let counts = await read()
    if (expected.length > 0) {
      await eventually(async () => {
        counts = await read()
        return expected.every((id) => counts.has(id))
      }, timeoutMs, 250)
    }
    return counts
  } finally {
    await connection.end()
  }
}

/**
 * Waits until every acknowledged page view (a `join` or `nav` at a path used once) is a row of
 * the activity log in `databaseUrl`, up to `timeoutMs`, then counts what is missing and what
 * is there twice.
 */
export async function checkWritten(databaseUrl: string, ackedPaths: readonly string[], timeoutMs: number): Promise<WrittenCheck> {
  const { createConnection } = await import('mysql2/promise')
  const connection = await createConnection({ uri: databaseUrl, connectTimeout: 5000 })
  try {
    const read = async (): Promise<Map<string, number>> => {
      const [rows] = await connection.query("SELECT path, COUNT(*) AS n FROM cat_events WHERE type IN ('join', 'nav') GROUP BY path")
      return new Map((rows as { path: string; n: number }[]).map((row) => [row.path, Number(row.n)]))
    }
    let counts = await read()
    await eventually(async () => {
      counts = await read()
      return ackedPaths.every((path) => counts.has(path))
    }, timeoutMs, 250)
    let duplicates = 0
    for (const n of counts.values()) if (n > 1) duplicates += n - 1
    const written = ackedPaths.filter((path) => counts.has(path)).length
    return { written, lost: ackedPaths.length - written, duplicates }
  } finally {
    await connection.end()
  }
}

export interface DashboardMessage {
  type: string
  seq: number
  online?: { contactId: string; tabs: number }[]
  joined?: { contactId: string }[]
  left?: { contactId: string; reason: string }[]
}

export interface RemoteDashboard {
  socket: WebSocket
  messages: DashboardMessage[]
  closed: Promise<{ code: number; reason: string }>
  /** Resolves true once a message from index `from` on matches, false after `timeoutMs`. */
  waitFor(match: (m: DashboardMessage) => boolean, timeoutMs: number, from?: number): Promise<boolean>
}

/** A real `ws` dashboard on an instance's /admin/ws (a process of its own, or in this one). */
export async function openDashboard(origin: string, token: string): Promise<RemoteDashboard> {
  const socket = new WebSocket(`${origin.replace(/^http/, 'ws')}/admin/ws?token=${encodeURIComponent(token)}`)
  const messages: DashboardMessage[] = []
  socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as DashboardMessage))
  socket.on('error', () => {})
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    socket.once('error', reject)
  })
  return {
    socket,
    messages,
    closed,
    waitFor: (match, timeoutMs, from = 0) => eventually(() => messages.slice(from).some(match), timeoutMs, 20),
  }
}
