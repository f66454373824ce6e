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
