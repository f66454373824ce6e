/**
 * Heartbeats per second of the fast path (periodic `beat` of known tabs, CONTACTS distinct
 * contacts) against a bare Fastify route returning 204, same load tool, same connections,
 * one run. Also Redis memory per online contact. `node --import tsx bench/heartbeat.ts [--quick]`
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { signToken } from '../src/auth/tokens.js'
import { presenceKeys, presenceMemoryUsage, redisKeys } from '../src/presence/redis-presence-engine.js'

const quick = process.argv.includes('--quick')
const CONTACTS = quick ? 10_000 : 100_000
const DURATION_S = quick ? 5 : 10
const CONNECTIONS = 50
const SECRET = 'bench-secret-0123456789abcdef'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

async function startServer(kind: string, site: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/server.ts', kind, String(CONTACTS), site], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  for await (const line of lines) {
    const match = /^ready (\d+)$/.exec(line)
    if (match) return { port: Number(match[1]), child }
  }
  throw new Error(`${kind} server did not start`)
}

async function load(port: number, paths: string[]): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  let i = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] as string }) }],
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

async function main(): Promise<void> {
  const now = Date.now()
  const paths: string[] = []
  for (let j = 0; j < CONTACTS; j += 1) {
    const token = signToken({ aud: 'client', sub: `contact-${j}`, clientId: `client-${j % 1000}`, name: `Contact ${j}`, company: `Company ${j % 1000}`, ttlS: 3600 }, [SECRET], now)
    paths.push(`/cat_heartbeat?token=${token}&sid=tab${String(j).padStart(8, '0')}&path=%2Fclients%2Ftickets&title=Support%20tickets&event=beat`)
  }
  const rows: Record<string, unknown>[] = []
  const site = `bench-${process.pid}`
  const results: Record<string, { rps: number; p50: number; p99: number; errors: number }> = {}
  for (const kind of ['bare', 'memory', 'redis']) {
    const { port, child } = await startServer(kind, site)
    await load(port, paths.slice(0, 1000)) // warm-up, discarded
    results[kind] = await load(port, paths)
    if (kind === 'redis') {
      const redis = new Redis(REDIS_URL)
      const keys = redisKeys(site)
      const usage = await presenceMemoryUsage(redis, site)
      rows.push({ measure: 'Redis bytes per online contact', value: Math.round(usage.bytes / CONTACTS), detail: `${usage.bytes} bytes in ${usage.keys} presence keys for ${CONTACTS} contacts` })
      await redis.del(...presenceKeys(site), keys.events, keys.seq)
      await redis.quit()
    }
    await stop(child)
  }
  const bare = results.bare?.rps ?? 1
  for (const [kind, r] of Object.entries(results)) {
    rows.unshift({ measure: `${kind} req/s`, value: Math.round(r.rps), detail: `ratio ${(r.rps / bare).toFixed(2)}, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}` })
  }
  console.table(rows)
  console.log(JSON.stringify({ contacts: CONTACTS, durationS: DURATION_S, connections: CONNECTIONS, results }, null, 2))
}

await main()
