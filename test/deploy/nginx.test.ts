/**
 * deploy/nginx.conf, run by Debian's nginx in front of three real instances (processes of their
 * own on one site of the shared test Redis Cluster and one MariaDB database). The config is the shipped file with only its
 * placeholders filled in (instance addresses, the listening port, the log and pid paths).
 *
 * Heartbeats, consent and the dashboard WebSocket work through it; the visitor's address is the
 * one nginx saw (X-Forwarded-For, CAT_TRUST_PROXY). Then a rolling restart under a steady
 * heartbeat load: each instance in turn gets SIGTERM, exits and is started again on its port.
 * No heartbeat is answered 5xx (nginx resends it to another instance), none is served twice
 * or lost (the activity log holds each acknowledged page view once), every dashboard closed by
 * a restart is live again within 2 s, and every dashboard ends holding exactly who is online.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { findProjectRoot } from '../../src/activity/database.js'
import { adminToken, clientToken, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { checkWritten, countStatuses, freePort, printFigures, runLoad, type LoadResult } from '../helpers/faults.js'
import { startInstance, type Instance } from '../helpers/instance.js'
import { openReconnectingDashboard, type ReconnectingDashboard } from '../helpers/reconnecting-dashboard.js'
import { cleanClusterSite, REDIS_CLUSTER_NODES } from '../helpers/redis-cluster.js'

// Four processes start on a machine that may be busy with other work: minutes, not seconds.
t.setTimeout(300_000)

const NGINX = '/usr/sbin/nginx'
if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: run scripts/test-services.sh (apt-get install nginx)`)

/**
 * Where every instance keeps its shared state: the shared test Redis Cluster (its seed nodes),
 * on a site of the test's own.
 */
const sharedStateEnv = (site: string): Record<string, string> => ({ REDIS_CLUSTER_NODES, CAT_SITE: site })

const CONTACTS = 300
const LEAVING = 50
const DASHBOARDS = 6
const RECONNECT_LIMIT_MS = 2000

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Replaces what `pattern` matches, which must be exactly `count` places: the shipped file changed otherwise. */
function fill(text: string, pattern: RegExp, replace: (match: string, index: number) => string, count: number, what: string): string {
  const found = text.match(pattern)?.length ?? 0
  if (found !== count) throw new Error(`deploy/nginx.conf: expected ${count} ${what}, found ${found}`)
  let index = 0
  return text.replace(pattern, (match) => replace(match, index++))
}

/** deploy/nginx.conf with its placeholders filled in; every directive is kept. */
function nginxConfig(dir: string, listenPort: number, instancePorts: readonly number[]): string {
  let conf = readFileSync(join(findProjectRoot(), 'deploy', 'nginx.conf'), 'utf8')
  // The pid file is given on the command line.
  conf = fill(conf, /^pid [^;]+;\n/gm, () => '', 1, 'pid line')
  conf = fill(conf, /\/var\/log\/nginx\//g, () => `${dir}/`, 2, 'log paths')
  conf = fill(conf, /^(\s*)listen 80;$/gm, (line) => line.replace('listen 80;', `listen 127.0.0.1:${listenPort};`), 1, 'listen line')
  // The example's three instance lines become the test's instances, with the same parameters.
  conf = fill(conf, /^(\s*)server 10\.0\.0\.\d+:3000( [^;]*)?;$/gm, (line, i) => line.replace(/10\.0\.0\.\d+:3000/, `127.0.0.1:${instancePorts[i]}`), instancePorts.length, 'instance lines')
  return conf
}

interface Nginx {
  origin: string
  dir: string
  accessLog(): string[]
  errorLog(): string
}

/** nginx as a child process in a process group of its own (master and workers), ended at teardown. */
async function startNginx(t: Teardown, instancePorts: readonly number[]): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'cat-nginx-'))
  // Workers run as an unprivileged user when nginx starts as root: they write temp files here.
  chmodSync(dir, 0o755)
  const port = await freePort()
  const confPath = join(dir, 'nginx.conf')
  writeFileSync(confPath, nginxConfig(dir, port, instancePorts))
  const args = ['-p', `${dir}/`, '-e', join(dir, 'cat-error.log'), '-c', confPath, '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]
  const child: ChildProcess = spawn(NGINX, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(-child.pid, 'SIGTERM')
      const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))])
      if (!gone) process.kill(-child.pid, 'SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  })
  const origin = `http://127.0.0.1:${port}`
  const read = (name: string): string => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '')
  // Listening is seen by asking: nginx says nothing on start.
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${output}${read('cat-error.log')}`)
    const status = await getStatus(origin, '/healthz').catch(() => 0)
    if (status === 200) break
    if (Date.now() > deadline) throw new Error(`nginx did not answer /healthz within 10 s: ${output}${read('cat-error.log')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    origin,
    dir,
    accessLog: () => read('cat-access.log').split('\n').filter((line) => line !== ''),
    errorLog: () => read('cat-error.log'),
  }
}

async function getStatus(origin: string, path: string): Promise<number> {
  const pool = new Pool(origin, { connections: 1 })
  try {
    const res = await pool.request({ path, method: 'GET' })
    await res.body.text()
    return res.statusCode
  } finally {
    await pool.destroy()
  }
}

/** Resolves once the instance answers /readyz 200 itself, as an orchestrator's readiness probe asks. */
async function ready(instance: Instance): Promise<void> {
  const deadline = Date.now() + 20_000
  while ((await getStatus(instance.origin, '/readyz').catch(() => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`instance on ${instance.port} not ready within 20 s:\n${instance.output().slice(-2000)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** The upstream that answered an access-log line (format `cat`) last, and with what status. */
function lastUpstream(line: string): { address: string; status: string } | undefined {
  const found = /^\S+ \S+ \S+ \d+ \S+ (.+) "([^"]*)" \S.*$/.exec(line)
  if (found === null) return undefined
  return { address: (found[1] ?? '').split(', ').at(-1) ?? '', status: (found[2] ?? '').split(', ').at(-1) ?? '' }
}

/** Resolves once nginx has had a 2xx from the instance on `port`, in access-log lines after the first `from`. */
async function inRotation(nginx: Nginx, port: number, from: number): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const served = nginx.accessLog().slice(from).some((line) => {
      const last = lastUpstream(line)
      return last?.address === `127.0.0.1:${port}` && last.status.startsWith('2')
    })
    if (served) return
    if (Date.now() > deadline) throw new Error(`nginx did not send traffic to the instance on ${port} again within 20 s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** POSTs a `granted` consent through `origin` from the local address `from`. */
async function grantFrom(origin: string, from: string, token: string): Promise<number> {
  const body = JSON.stringify({ token, decision: 'granted', version: 'nginx', locale: 'en' })
  const url = new URL(origin)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, localAddress: from, method: 'POST', path: '/clients/cat_consent', agent: false, headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The HTTP status an upgrade to `url` is answered with (101 when it is accepted). */
async function upgradeStatus(url: string, origin: string, headers: Record<string, string>): Promise<number> {
  const socket = new WebSocket(url, { origin, headers })
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.terminate()
      resolve(101)
    })
    socket.once('unexpected-response', (_req, res) => {
      res.resume()
      socket.terminate()
      resolve(res.statusCode ?? 0)
    })
    socket.once('error', reject)
  })
}

interface OnlineView {
  contactId: string
  path: string
  tabs: number
  state: string
}

const view = (p: { contactId: string; path: unknown; tabs: unknown; state?: unknown }): string => `${p.contactId} ${String(p.path)} ${String(p.tabs)} ${String(p.state)}`

t.test('deploy/nginx.conf in front of three instances: heartbeats and dashboards through it, and a rolling restart under load', async (t) => {
  const databaseUrl = await createTestMysqlDatabase(t, 'nginx')
  const site = uniqueSite('nginx')
  cleanClusterSite(t, site)
  const ports = await Promise.all([freePort(), freePort(), freePort()])
  const instanceEnv = (port: number): Record<string, string> => ({
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    ...sharedStateEnv(site),
    CAT_TRUST_PROXY: '127.0.0.1',
    CAT_DIFF_INTERVAL_MS: '50',
  })
  // One first, so the others find the migrations applied.
  const instances: Instance[] = [await startInstance(t, instanceEnv(ports[0] as number))]
  instances.push(...(await Promise.all(ports.slice(1).map((port) => startInstance(t, instanceEnv(port))))))
  await Promise.all(instances.map(ready))
  const nginx = await startNginx(t, ports)
  const pool = new Pool(nginx.origin, { connections: 4 })
  t.teardown(() => pool.destroy())
  const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
    const res = await pool.request({ path, method: 'GET', headers })
    return { status: res.statusCode, body: await res.body.text() }
  }

  const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `nx-${k}`, clientId: `client-${k % 7}` }))
  const sids = Array.from({ length: CONTACTS }, (_, k) => `nxtab${String(k).padStart(4, '0')}`)

  t.test('through nginx: consent records the address nginx saw, not nginx\'s, and a POST heartbeat is served', async (t) => {
    // Loopback is all of 127.0.0.0/8: this client comes from 127.0.5.7, nginx from 127.0.0.1.
    t.equal(await grantFrom(nginx.origin, '127.0.5.7', tokens[0] as string), 204)
    const exported = await get('/admin/api/contacts/nx-0/export', { authorization: `Bearer ${adminToken()}` })
    t.same((JSON.parse(exported.body) as { consents: { ip: string }[] }).consents.map((c) => c.ip), ['127.0.5.0'], 'the ledger holds the visitor\'s network (X-Forwarded-For from a trusted proxy)')
    const res = await pool.request({ path: '/cat_heartbeat', method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token: tokens[0], sid: sids[0], event: 'nav', path: '/start' }) })
    await res.body.text()
    t.equal(res.statusCode, 204, 'a sendBeacon-style POST heartbeat')
  })

  t.test('through nginx: the dashboard WebSocket\'s Origin is checked against the Host the browser used', async (t) => {
    const url = `${nginx.origin.replace(/^http/, 'ws')}/admin/ws?token=${encodeURIComponent(adminToken())}`
    t.equal(await upgradeStatus(url, nginx.origin, {}), 101, 'same origin as the browser saw it: accepted')
    t.equal(await upgradeStatus(url, 'http://evil.example', { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' }), 403, 'another origin is refused, also when the client sends forwarding headers naming it')
  })
  t.test('through nginx: an admin token listing 10 000 clients, in the Authorization header and in the WebSocket\'s URL', async (t) => {
    const clients = [...Array.from({ length: 10_000 }, (_, i) => String(500_000 + i)), 'client-0']
    const token = adminToken({ clients })
    t.ok(token.length > 100_000, `${token.length} characters`)
    const online = await get('/admin/api/online', { authorization: `Bearer ${token}` })
    t.equal(online.status, 200, 'REST: 200')
    t.same((JSON.parse(online.body) as { online: { contactId: string }[] }).online.map((p) => p.contactId), ['nx-0'], 'only contacts of the clients listed: client-0\'s nx-0, online since the POST heartbeat above')
    t.equal(await upgradeStatus(`${nginx.origin.replace(/^http/, 'ws')}/admin/ws?token=${encodeURIComponent(token)}`, nginx.origin, {}), 101, 'WebSocket: accepted')
  })
  for (let k = 1; k < CONTACTS; k += 1) {
    const res = await pool.request({ path: '/clients/cat_consent', method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token: tokens[k], decision: 'granted', version: 'nginx', locale: 'en' }) })
    await res.body.text()
    if (res.statusCode !== 204) throw new Error(`consent through nginx answered ${res.statusCode}`)
  }

  // Connected one after another with nothing in between, the dashboards are spread over the
  // instances by nginx's round robin, so every instance has some to close when it restarts.
  const wsUrl = `${nginx.origin.replace(/^http/, 'ws')}/admin/ws?token=${encodeURIComponent(adminToken())}`
  const dashboards: ReconnectingDashboard[] = []
  for (let d = 0; d < DASHBOARDS; d += 1) dashboards.push(await openReconnectingDashboard(wsUrl, nginx.origin))
  t.teardown(() => Promise.all(dashboards.map((d) => d.stop())))

  let stopLoad = false
  const load: Promise<LoadResult> = runLoad({
    origin: nginx.origin,
    maxRequests: 1_000_000,
    durationMs: 100_000,
    concurrency: 4,
    gapMs: 5,
    timeoutMs: 15_000,
    stop: () => stopLoad,
    request: (i) => ({ path: `/cat_heartbeat?token=${tokens[i % CONTACTS]}&sid=${sids[i % CONTACTS]}&event=nav&path=/n/${i}` }),
  })
  // Stopped before anything else is torn down, also when an assertion below throws.
  t.teardown(async () => {
    stopLoad = true
    await load
  })
  await Promise.all(dashboards.map((d) => d.until('every contact online on the dashboard', () => d.state.size === CONTACTS, 15_000)))
  t.pass(`heartbeats through nginx reach dashboards connected through nginx (${DASHBOARDS} dashboards, ${CONTACTS} contacts)`)

  const restarts: { port: number; restartMs: number; exit: { code: number | null; signal: NodeJS.Signals | null }; closed: number; reconnectMs: number[] }[] = []
  for (let k = 0; k < instances.length; k += 1) {
    const old = instances[k] as Instance
    const before = dashboards.map((d) => d.closes.length)
    const signalled = performance.now()
    old.signal('SIGTERM')
    const exit = await old.exited
    // The dashboards it closed reconnect through nginx to the other two. Its replacement starts
    // after that: under tsx a start is seconds of compiling on a shared machine, which a built
    // deployment does not pay and which would be counted here as the dashboards' reconnect time.
    const closedNow = dashboards.flatMap((d, i) => d.closes.slice(before[i]).map((close) => ({ d, close })))
    await Promise.all(closedNow.map(({ d, close }) => d.until('live again after the restart', () => close.liveAgainAt !== undefined, 10_000).catch(() => undefined)))
    const restarted = await startInstance(t, instanceEnv(old.port))
    instances[k] = restarted
    await ready(restarted)
    const logged = nginx.accessLog().length
    // nginx left the instance out after its first failure and takes it back at its first
    // successful try after fail_timeout: the next restart waits for that, as an operator does.
    await inRotation(nginx, old.port, logged)
    const restartMs = Math.round(performance.now() - signalled)
    restarts.push({
      port: old.port,
      restartMs,
      exit,
      closed: closedNow.length,
      reconnectMs: closedNow.map(({ close }) => (close.liveAgainAt === undefined ? Infinity : Math.round(close.liveAgainAt - close.at))),
    })
  }
  stopLoad = true
  const result = await load
  const afterRestarts = nginx.accessLog()

  // Some contacts leave; whoever is left is online, and every dashboard must hold exactly them.
  for (let k = 0; k < LEAVING; k += 1) {
    const left = await get(`/cat_heartbeat?token=${tokens[k]}&sid=${sids[k]}&event=leave`)
    if (left.status !== 204) throw new Error(`leave through nginx answered ${left.status}: ${left.body}`)
  }
  const onlineRes = await get('/admin/api/online', { authorization: `Bearer ${adminToken()}` })
  const online = (JSON.parse(onlineRes.body) as { online: OnlineView[] }).online
  const expectedIds = Array.from({ length: CONTACTS - LEAVING }, (_, k) => `nx-${k + LEAVING}`).sort()
  const truth = online.map(view).sort()
  const held = (d: ReconnectingDashboard): string[] => [...d.state.values()].map((p) => view(p)).sort()
  await Promise.all(dashboards.map((d) => d.until('the dashboard holds exactly who is online', () => JSON.stringify(held(d)) === JSON.stringify(truth), 5000).catch(() => undefined)))

  const acked = result.sent.filter((s) => s.status === 204).map((s) => `/n/${s.i}`)
  const written = await checkWritten(databaseUrl, acked, 30_000)
  const retried = afterRestarts.filter((line) => /"[^"]*,[^"]*"/.test(line)).length
  const reconnects = restarts.flatMap((r) => r.reconnectMs)
  printFigures(t, 'nginx-rolling-restart', {
    requests: result.sent.length,
    statuses: Object.entries(result.statuses).map(([status, n]) => `${status}:${n}`).join('/'),
    retriedByNginx: retried,
    dashboardsClosed: reconnects.length,
    reconnectMaxMs: Math.max(...reconnects),
    restartMs: restarts.map((r) => r.restartMs).join('/'),
    acked: acked.length,
    lost: written.lost,
    duplicates: written.duplicates,
  })

  t.same(restarts.map((r) => r.exit), restarts.map(() => ({ code: 0, signal: null })), 'each instance exits 0 on SIGTERM')
  t.same(countStatuses(result.sent.filter((s) => s.status !== 204)), {}, `every heartbeat through nginx is answered 204, none 5xx or cut: ${result.sent.filter((s) => s.status !== 204).slice(0, 5).map((s) => `${s.status} ${s.error ?? s.body}`).join('; ')}`)
  t.ok(result.sent.length > CONTACTS * 3, `the load went on through all three restarts (${result.sent.length} heartbeats)`)
  t.ok(retried > 0, 'nginx met restarting instances and resent those heartbeats to another')
  t.same(written, { written: acked.length, lost: 0, duplicates: 0 }, 'every acknowledged page view is in the activity log once: none lost, none served twice')
  for (const r of restarts) t.ok(r.closed > 0, `the restart of the instance on ${r.port} closed dashboards (${r.closed})`)
  t.same(dashboards.flatMap((d) => d.closes.map((c) => c.code)).filter((code) => code !== 1012), [], 'dashboards are closed only with 1012 (service restart)')
  t.same(reconnects.filter((ms) => ms > RECONNECT_LIMIT_MS), [], `every dashboard closed by a restart is live again within ${RECONNECT_LIMIT_MS} ms: ${reconnects.join(', ')}`)
  t.same(online.map((p) => p.contactId).sort(), expectedIds, 'online: every contact that kept beating, none that left')
  for (const [i, d] of dashboards.entries()) t.same(held(d), truth, `dashboard ${i} holds exactly who is online, with their pages`)
  t.same(dashboards.flatMap((d) => d.oddities), [], 'nothing but snapshots and diffs on the dashboards')
  t.equal(nginx.errorLog(), '', 'nginx logged nothing at crit or above')
  t.notOk(nginx.accessLog().some((line) => /token=|eyJ/.test(line)), 'no token in nginx\'s access log')

  // With every instance gone nginx answers by itself, as the instances answer their 503s.
  await Promise.all(dashboards.map((d) => d.stop()))
  for (const instance of instances) instance.signal('SIGTERM')
  await Promise.all(instances.map((instance) => instance.exited))
  const res = await pool.request({ path: `/cat_heartbeat?token=${tokens[CONTACTS - 1]}&sid=${sids[CONTACTS - 1]}`, method: 'GET' })
  const unavailable = await res.body.text()
  t.equal(res.statusCode, 503, 'no instance: 503')
  t.equal(res.headers['retry-after'], '5', 'with Retry-After')
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(unavailable), { error: { code: 'unavailable', message: 'No instance is available; retry after the time in Retry-After.' } }, 'the catalogue\'s error body')
})
