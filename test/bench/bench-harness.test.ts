/**
 * `npm run bench` keeps working: the harness runs two of its scenarios for real (real Redis,
 * a real server child process) and writes its results where it is told. Timings are not
 * asserted here (tests never hold the machine to a speed); what a reader of the results relies
 * on is: every row has a value and a target verdict, and nothing sent was lost.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runTs } from '../helpers/run-ts.js'

interface Results {
  quick: boolean
  machine: { cpus: number; redis: string; mariadb: string }
  rows: { scenario: string; measure: string; value: string; target: string; pass?: boolean }[]
  scenarios: Record<string, Record<string, unknown>>
}

t.test('bench/run.ts --quick --only snippet,diff writes its table and results', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cat-bench-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { ...process.env, BENCH_RESULTS_DIR: dir }
  const run = await runTs('bench/run.ts', ['--quick', '--only', 'snippet,diff'], env)
  t.equal(run.code, 0, run.stderr.slice(-2000))
  const results = JSON.parse(readFileSync(join(dir, 'quick.json'), 'utf8')) as Results
  t.equal(results.quick, true)
  t.ok(results.machine.cpus > 0 && results.machine.redis.length > 0 && results.machine.mariadb.length > 0, 'the machine is named')
  t.same(results.rows.map((r) => r.scenario), ['snippet', 'live diffs'], 'the scenarios asked for, in that order')
  const snippet = results.rows.find((r) => r.scenario === 'snippet')
  t.match(snippet, { value: /^\d+ B$/, target: '≤ 3072 B', pass: true }, 'the served snippet is measured and within its limit')
  const diff = results.scenarios.diff as { received: number; expected: number; failed: number }
  t.ok(diff.expected > 0)
  t.equal(diff.received, diff.expected, 'every join reached every dashboard')
  t.equal(diff.failed, 0, 'every heartbeat was answered 204')
  const table = readFileSync(join(dir, 'quick.md'), 'utf8')
  t.match(table, /\| scenario \| measure \| result \| target \| met \|/)
  t.match(table, /\| snippet \| served snippet, gzipped/)
  t.match(run.stdout, /\| live diffs \|/, 'the table is printed too')
})

t.test('an unknown scenario is refused with the list of known ones', async (t) => {
  const run = await runTs('bench/run.ts', ['--quick', '--only', 'nosuch'], { ...process.env, BENCH_RESULTS_DIR: tmpdir() })
  t.not(run.code, 0)
  t.match(run.stderr, /unknown scenario nosuch; known: heartbeats, diff, expiry, writer, snippet/)
})

t.test('the bench servers run with the Node options production runs with: npm start and the Dockerfile agree', async (t) => {
  const { startNodeArgs } = await import('../../bench/lib.js')
  const flags = startNodeArgs()
  t.match(flags, /--max-semi-space-size=\d+/, 'npm start sizes the young generation')
  const cmd = /^CMD \[(.*)\]$/m.exec(readFileSync('Dockerfile', 'utf8'))?.[1]
  t.ok(cmd !== undefined, 'the Dockerfile has a CMD')
  const argv = JSON.parse(`[${cmd}]`) as string[]
  t.strictSame(argv, ['node', ...flags.split(' '), 'dist/src/main.js'], 'the image starts the server the same way')
})

t.test("a server's next load goes on through the paths where its last one stopped: every contact keeps beating", async (t) => {
  const { createServer } = await import('node:http')
  const { load } = await import('../../bench/lib.js')
  const seen: string[] = []
  const server = createServer((request, response) => {
    seen.push(request.url ?? '')
    response.statusCode = 204
    response.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const paths = Array.from({ length: 10 }, (_, i) => `/p${i}`)
  await load(port, paths, { connections: 1, amount: 6 })
  await load(port, paths, { connections: 1, amount: 6 })
  t.same([...new Set(seen)].sort(), [...paths].sort(), 'two loads of 6 reach all 10 paths')
  t.same(seen.slice(6, 10), ['/p6', '/p7', '/p8', '/p9'], 'the second load begins at the seventh path')
})

/** A stub server on an ephemeral port recording every request's URL, answering `status`. */
async function stubServer(t: { teardown(fn: () => unknown): void }, status = 204): Promise<{ port: number; urls: string[] }> {
  const { createServer } = await import('node:http')
  const urls: string[] = []
  const server = createServer((request, response) => {
    urls.push(request.url ?? '')
    response.statusCode = status
    response.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return { port: (server.address() as { port: number }).port, urls }
}

t.test("wrk's heartbeat load: the tokens file's contacts in random order, each with its own tab, every nav a page change, CPU per request measured", async (t) => {
  const { tabId, writeTokensFile, wrkLoad } = await import('../../bench/lib.js')
  const { rmSync: rm } = await import('node:fs')
  const { dirname } = await import('node:path')
  const tokens = Array.from({ length: 20 }, (_, j) => `tok.en-${j}`)
  const file = writeTokensFile(tokens)
  t.teardown(() => rm(dirname(file), { recursive: true, force: true }))
  const stub = await stubServer(t)
  const parse = (url: string): { route: string; token: string; sid: string; path: string; event: string } => {
    const { pathname, searchParams: q } = new URL(url, 'http://x')
    return { route: pathname, token: q.get('token') ?? '', sid: q.get('sid') ?? '', path: q.get('path') ?? '', event: q.get('event') ?? '' }
  }

  const beats = await wrkLoad(stub.port, file, { event: 'beat', connections: 4, durationS: 1, pid: process.pid })
  t.equal(beats.errors, 0)
  t.ok(beats.requests > 0 && beats.rps > 0, 'requests were answered')
  // wrk counts answered requests; those still in flight when it stops reach the server too.
  t.ok(stub.urls.length >= beats.requests && stub.urls.length <= beats.requests + 4, `the server saw what wrk counted (${stub.urls.length} vs ${beats.requests})`)
  const sent = stub.urls.splice(0).map(parse)
  t.ok(sent.every((r) => tokens.indexOf(r.token) !== -1 && r.sid === tabId(tokens.indexOf(r.token))), "every request is a contact's token with that contact's own tab")
  t.ok(sent.every((r) => r.route === '/cat_heartbeat' && r.path === '/clients/tickets' && r.event === 'beat'), 'beats stay on the page the contacts were seeded on')
  t.equal(new Set(sent.map((r) => r.token)).size, tokens.length, 'every contact is reached')
  t.ok(beats.wrkCpuUs > 0 && beats.wrkSystemUs <= beats.wrkCpuUs, "wrk's own CPU per request is measured")
  t.ok(beats.serverCpuUs !== undefined && beats.serverCpuUs > 0, "the server process's CPU per request is measured")

  // One connection: requests reach the server in the order wrk makes them.
  const pagesOf = async (salt: string): Promise<Map<string, string[]>> => {
    const run = await wrkLoad(stub.port, file, { event: 'nav', connections: 1, durationS: 1, salt })
    const sent = stub.urls.splice(0).map(parse)
    navCounts.push(run.requests)
    navFirst.push(sent[0]?.token ?? '')
    navOrder.push(sent.map((r) => r.token))
    t.ok(sent.length > 0 && sent.every((r) => r.route === '/cat_heartbeat' && r.event === 'nav'), 'navs were sent')
    const byContact = new Map<string, string[]>()
    for (const r of sent) byContact.set(r.token, [...(byContact.get(r.token) ?? []), r.path])
    return byContact
  }
  const navCounts: number[] = []
  const navFirst: string[] = []
  const navOrder: string[][] = []
  const first = await pagesOf('a')
  const second = await pagesOf('b')
  const firstPass = (navOrder[0] ?? []).slice(0, tokens.length)
  t.equal(new Set(firstPass).size, tokens.length, 'each contact once per pass through the file')
  t.ok(firstPass.some((token, i) => token !== tokens[(tokens.indexOf(firstPass[0] ?? '') + i) % tokens.length]), 'in random order, not the order the tokens were minted in')
  t.equal(navFirst[1], firstPass[(navCounts[0] ?? 0) % tokens.length], "a server's next load goes on where its last one stopped: every contact keeps beating")
  for (const run of [first, second]) {
    const changes = [...run.values()].every((pages) => pages.every((page, i) => i === 0 || page !== pages[i - 1]))
    t.ok(changes, "each contact's navs alternate between two pages: every one is a page change")
  }
  const pagesA = new Set([...first.values()].flat())
  const pagesB = new Set([...second.values()].flat())
  t.equal(pagesA.size, 2)
  t.ok([...pagesB].every((page) => !pagesA.has(page) && page !== '/clients/tickets'), "another run's pages are new to every contact, so its first nav is a change too")
})

t.test('wrk counts every answer other than 2xx as an error', async (t) => {
  const { writeTokensFile, wrkLoad } = await import('../../bench/lib.js')
  const { rmSync: rm } = await import('node:fs')
  const { dirname } = await import('node:path')
  const file = writeTokensFile(['tok-0', 'tok-1'])
  t.teardown(() => rm(dirname(file), { recursive: true, force: true }))
  const stub = await stubServer(t, 503)
  const result = await wrkLoad(stub.port, file, { event: 'beat', connections: 2, durationS: 1 })
  t.ok(result.requests > 0)
  t.equal(result.errors, result.requests, 'a server answering 503 does not pass for a fast one')
})

t.test('the heartbeat rows: Node CPU per heartbeat against the bare route, Redis CPU, throughput ratio, each against its target', async (t) => {
  const { heartbeatRows } = await import('../../bench/scenarios/heartbeat.js')
  const bare = { rps: 40_000, serverCpuUs: 20, redisCpuUs: 0.1, wrkCpuUs: 8, errors: 0, requests: 1 }
  const redis = { rps: 24_000, serverCpuUs: 24, redisCpuUs: 4.2, wrkCpuUs: 8, errors: 0, requests: 1 }
  const rows = heartbeatRows('fast path, Redis engine', redis, bare, { nodeCpu: 1.25, redisCpuUs: 5, rps: 0.5 }, true, 'rounds …')
  t.match(rows, [
    { measure: 'fast path, Redis engine: Node CPU per heartbeat', value: '24.0 µs (1.20× bare)', target: '≤ 1.25× bare', pass: true },
    { measure: 'fast path, Redis engine: Redis CPU per heartbeat', value: '4.2 µs', target: '≤ 5 µs', pass: true },
    { measure: 'fast path, Redis engine: throughput vs bare', value: '0.60 (24000 req/s)', target: '≥ 0.5', pass: true },
  ])
  const over = heartbeatRows('x', { ...redis, serverCpuUs: 26, redisCpuUs: 5.5, rps: 19_000 }, bare, { nodeCpu: 1.25, redisCpuUs: 5, rps: 0.5 }, true, '')
  t.same(over.map((r) => r.pass), [false, false, false], 'a figure past its target is not met')
  const failed = heartbeatRows('x', { ...redis, errors: 3 }, bare, { nodeCpu: 1.25, redisCpuUs: 5, rps: 0.5 }, true, '')
  t.same(failed.map((r) => r.pass), [false, false, false], 'a load with errors meets no target')
  t.match(failed[0]?.value, /3 errors/)
  const joins = heartbeatRows('x', { ...redis, events: 12 }, bare, { nodeCpu: 1.25, redisCpuUs: 5, rps: 0.5 }, true, '')
  t.same(joins.map((r) => r.pass), [false, false, false], 'beats that were not all the fast path (a late beat, a join of an expired contact) meet no target of the fast path')
  t.match(joins[0]?.value, /12 not the fast path/)
  const navs = heartbeatRows('nav', { ...redis, events: 1000 }, bare, { rps: 0.5 }, true, '', false)
  t.same(navs.map((r) => r.pass), [undefined, undefined, true], 'navs cause an activity event each, as they should')
  const memory = heartbeatRows('fast path, memory engine', redis, bare, { rps: 0.5 }, false, '')
  t.same(memory.map((r) => [r.measure, r.target, r.pass]), [['fast path, memory engine: Node CPU per heartbeat', '', undefined], ['fast path, memory engine: throughput vs bare', '≥ 0.5', true]], 'no Redis row for the memory engine; no target, no verdict')
})

t.test("an engine's multiples of the bare route are the medians of its rounds' ratios, not the ratio of its medians", async (t) => {
  const { heartbeatRows, roundRatios } = await import('../../bench/scenarios/heartbeat.js')
  const run = (serverCpuUs: number, rps: number) => ({ rps, serverCpuUs, redisCpuUs: 4, wrkCpuUs: 8, wrkSystemUs: 4, p50: 1, p99: 2, errors: 0, requests: 1 })
  // The machine ran at three speeds: in each round the engine cost 1.1× the bare route, but
  // the medians of the two, taken over different rounds' speeds, say 1.5×.
  const bareRuns = [run(20, 40_000), run(40, 20_000), run(30, 26_000)]
  const engineRuns = [run(22, 30_000), run(44, 15_000), run(60, 10_000)]
  const ratios = roundRatios(engineRuns, bareRuns)
  t.equal(ratios.serverCpu.toFixed(2), '1.10')
  t.equal(ratios.rps.toFixed(2), '0.75')
  const bare = { rps: 26_000, serverCpuUs: 30, redisCpuUs: 0.1, wrkCpuUs: 8, errors: 0, requests: 3 }
  const engine = { rps: 15_000, serverCpuUs: 44, redisCpuUs: 4, wrkCpuUs: 8, errors: 0, requests: 3 }
  t.match(heartbeatRows('x', engine, bare, { nodeCpu: 1.25, rps: 0.5 }, true, '')[0], { value: '44.0 µs (1.47× bare)', pass: false }, 'the ratio of the medians, without the rounds')
  const rows = heartbeatRows('x', engine, bare, { nodeCpu: 1.25, rps: 0.5 }, true, '', true, ratios)
  t.match(rows[0], { value: '44.0 µs (1.10× bare)', pass: true })
  t.match(rows.at(-1), { value: '0.75 (15000 req/s)', pass: true })
})

t.test("a process's CPU time and minor page faults, as bench/snapshot.ts reads them from /proc", async (t) => {
  const { processCpuMs, processMinorFaults } = await import('../../bench/lib.js')
  const faults = processMinorFaults(process.pid)
  const cpu = processCpuMs(process.pid)
  // 64 MB written for the first time: thousands of fresh pages.
  const fresh = Buffer.allocUnsafe(64 << 20).fill(1)
  t.ok(processMinorFaults(process.pid) > faults, `the faults rise with fresh pages written (${faults} before)`)
  t.ok(processCpuMs(process.pid) >= cpu, 'the CPU time never falls')
  t.equal(fresh[fresh.length - 1], 1)
})

t.test("the bench's dashboard times a message at the socket: fragments of every length encoding, control frames between them, a close before it", async (t) => {
  const { WebSocketServer } = await import('ws')
  const { firstMessageRaw } = await import('../../bench/raw-message.js')
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', verifyClient: (info: { req: { url?: string } }) => info.req.url?.includes('refuse') !== true })
  await new Promise<void>((resolve) => server.once('listening', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  // 125 bytes (7-bit length), 60 000 (16-bit), 300 000 (64-bit); a ping and a pong between fragments.
  const parts: [Buffer, Buffer, Buffer] = [Buffer.alloc(125, 'a'), Buffer.alloc(60_000, 'b'), Buffer.alloc(300_000, 'c')]
  server.on('connection', (socket, request) => {
    if (request.url?.includes('close') === true) {
      socket.close(4001, 'bye')
      return
    }
    socket.send(parts[0], { binary: false, fin: false })
    socket.ping()
    socket.send(parts[1], { binary: false, fin: false })
    socket.pong()
    socket.send(parts[2], { binary: false, fin: true })
    socket.send('the next message', { binary: false, fin: true })
  })
  const port = (server.address() as { port: number }).port
  const message = await firstMessageRaw(port, '/admin/ws?token=x', 10_000)
  t.equal(message.data.length, 360_125, 'the first message whole, and not the one after it')
  t.ok(message.data.equals(Buffer.concat(parts)), 'its fragments in order, without the control frames')
  t.ok(message.firstByteMs <= message.lastByteMs, 'the first byte before the last')
  await t.rejects(firstMessageRaw(port, '/close', 10_000), /closed before the message arrived/, 'a close frame first is an error')
  await t.rejects(firstMessageRaw(port, '/refuse', 10_000), /the upgrade was refused: HTTP\/1.1 401/, 'a refused upgrade is an error with its status')
  const { createServer } = await import('node:net')
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const closedPort = (closed.address() as { port: number }).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  await t.rejects(firstMessageRaw(closedPort, '/', 10_000), /ECONNREFUSED/, 'nothing listening is an error')
})

t.test("the million scenario's dashboard in a process of its own: the snapshot's bytes and count come back, a wrong count fails the run", async (t) => {
  const { WebSocketServer } = await import('ws')
  const { snapshotTimingApart } = await import('../../bench/snapshot-client.js')
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise<void>((resolve) => server.once('listening', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const tokens: string[] = []
  server.on('connection', (socket, request) => {
    tokens.push(new URL(request.url ?? '/', 'http://x').searchParams.get('token') ?? '')
    // In fragments of one message, as the hub streams a snapshot.
    socket.send('{"type":"snapshot","seq":1,"at":1,"online":[', { fin: false })
    socket.send('{"contactId":"a"},', { fin: false })
    socket.send('{"contactId":"b"}]}', { fin: true })
  })
  const port = (server.address() as { port: number }).port
  const timing = await snapshotTimingApart(port, 2, 'the-admin-token')
  t.equal(timing.online, 2, 'the count of the snapshot received')
  t.equal(timing.bytes, '{"type":"snapshot","seq":1,"at":1,"online":[{"contactId":"a"},{"contactId":"b"}]}'.length, 'its bytes')
  t.ok(timing.firstByteMs <= timing.lastByteMs, 'the first byte before the last')
  t.same(tokens, ['the-admin-token'], 'the token given is the one sent')
  await t.rejects(snapshotTimingApart(port, 3, 'the-admin-token'), /the snapshot client exited with 1/, 'a snapshot of another count fails')
})
