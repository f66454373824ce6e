/**
 * `npm run bench [-- --quick] [-- --only heartbeats,diff,expiry,writer,snippet,million,cluster,dashboard [--merge]]`
 * Runs every scenario of bench/scenarios against real Redis and MariaDB, then writes
 * bench/results/latest.json and latest.md (a --quick run: quick.json and quick.md) and, after
 * a full run of every scenario, puts the table into README.md between its bench markers.
 * `--only … --merge` puts the rows of the scenarios it ran in place of theirs in latest.json
 * (rows of the same scenario labels), keeps every other row of the last full run, says in the
 * table's heading which rows come from which run, and updates README.md the same way.
 * See bench/README.md for what each scenario does and how to read it.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { createConnection } from 'mysql2/promise'
import { findProjectRoot } from '../src/activity/database.js'
import { MYSQL_URL, REDIS_URL, log, round } from './lib.js'
import { heartbeatScenario } from './scenarios/heartbeat.js'
import { diffScenario } from './scenarios/diff.js'
import { expiryScenario } from './scenarios/expiry.js'
import { writerScenario } from './scenarios/writer.js'
import { snippetScenario } from './scenarios/snippet.js'
import { millionScenario } from './scenarios/million.js'
import { clusterScenario } from './scenarios/cluster.js'
import { dashboardScenario } from './scenarios/dashboard.js'
import type { Row, RunOptions, ScenarioResult } from './scenarios/types.js'

const SCENARIOS: Record<string, (options: RunOptions) => Promise<ScenarioResult>> = {
  heartbeats: heartbeatScenario,
  diff: diffScenario,
  expiry: expiryScenario,
  writer: writerScenario,
  snippet: snippetScenario,
  million: millionScenario,
  cluster: clusterScenario,
  dashboard: dashboardScenario,
}

const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'

async function machine(): Promise<Record<string, string | number>> {
  const redis = new Redis(REDIS_URL)
  const info = await redis.info('server')
  redis.disconnect()
  const mysql = await createConnection({ uri: MYSQL_URL })
  const [[row]] = (await mysql.query('SELECT VERSION() AS v')) as unknown as [[{ v: string }]]
  await mysql.end()
  return {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    mariadb: row.v,
  }
}

/** A later run of some scenarios merged into a full run's results (--merge). */
interface Merged {
  scenarios: string[]
  date: string
  commit: string
  seconds: number
}

interface Meta {
  date: string
  quick: boolean
  machine: Record<string, string | number>
  seconds: number
  commit: string
  merged?: Merged[]
}

function markdown(rows: Row[], meta: Meta): string {
  const m = meta.machine
  const merged = (meta.merged ?? []).map((run) => ` The rows of ${run.scenarios.join(', ')}: \`npm run bench -- --only ${run.scenarios.join(',')} --merge\` on ${run.date}, commit ${run.commit}, ${Math.round(run.seconds)} s.`)
  const lines = [
    `Measured ${meta.date} on ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, Redis ${m.redis}, MariaDB ${m.mariadb}; commit ${meta.commit}; \`npm run bench${meta.quick ? ' -- --quick' : ''}\` took ${Math.round(meta.seconds)} s.${merged.join('')}`,
    '',
    '| scenario | measure | result | target | met |',
    '| --- | --- | --- | --- | --- |',
  ]
  for (const r of rows) lines.push(`| ${r.scenario} | ${r.measure} | ${r.value} | ${r.target} | ${r.pass === undefined ? '' : r.pass ? 'yes' : '**no**'} |`)
  return `${lines.join('\n')}\n`
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const onlyAt = args.indexOf('--only')
  const only = onlyAt === -1 ? Object.keys(SCENARIOS) : (args[onlyAt + 1] ?? '').split(',')
  const merge = args.includes('--merge')
  if (merge && (onlyAt === -1 || quick)) throw new Error('--merge goes with --only and without --quick: it merges some scenarios into the last full run')
  for (const name of only) if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`)
  const root = findProjectRoot()
  const started = performance.now()
  const meta: Meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    quick,
    machine: await machine(),
    commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
    seconds: 0,
  }
  const results: ScenarioResult[] = []
  for (const name of only) {
    const t0 = performance.now()
    const result = await (SCENARIOS[name] as (o: RunOptions) => Promise<ScenarioResult>)({ quick })
    result.data.seconds = round((performance.now() - t0) / 1000, 1)
    results.push(result)
    for (const row of result.rows) log(`${row.pass === false ? 'MISSED ' : ''}${row.measure}: ${row.value}${row.target === '' ? '' : ` (target ${row.target})`}${row.detail === undefined ? '' : `; ${row.detail}`}`)
  }
  meta.seconds = (performance.now() - started) / 1000
  // BENCH_RESULTS_DIR: elsewhere (the harness's own test); the README is then left alone.
  const dir = process.env.BENCH_RESULTS_DIR ?? join(root, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  const base = quick ? 'quick' : 'latest'
  let rows = results.flatMap((r) => r.rows)
  let output: Meta & { rows: Row[]; scenarios: Record<string, unknown> } = { ...meta, seconds: round(meta.seconds, 1), rows, scenarios: Object.fromEntries(results.map((r) => [r.name, r.data])) }
  if (merge) {
    const last = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as typeof output
    const labels = new Set(rows.map((row) => row.scenario))
    const at = last.rows.findIndex((row) => labels.has(row.scenario))
    const kept = last.rows.filter((row) => !labels.has(row.scenario))
    rows = at === -1 ? [...kept, ...rows] : [...kept.slice(0, at), ...rows, ...kept.slice(at)]
    const run: Merged = { scenarios: only, date: meta.date, commit: meta.commit, seconds: round(meta.seconds, 1) }
    const earlier = (last.merged ?? []).filter((m) => !m.scenarios.every((name) => only.includes(name)))
    output = { ...last, merged: [...earlier, run], rows, scenarios: { ...last.scenarios, ...output.scenarios } }
  }
  const table = markdown(rows, output)
  writeFileSync(join(dir, `${base}.json`), `${JSON.stringify(output, null, 2)}\n`)
  writeFileSync(join(dir, `${base}.md`), table)
  if (!quick && (onlyAt === -1 || merge) && process.env.BENCH_RESULTS_DIR === undefined) {
    const readmePath = join(root, 'README.md')
    const readme = readFileSync(readmePath, 'utf8')
    const from = readme.indexOf(START)
    const to = readme.indexOf(END)
    if (from !== -1 && to > from) writeFileSync(readmePath, `${readme.slice(0, from + START.length)}\n${table}${readme.slice(to)}`)
    else log(`README.md has no ${START} … ${END} markers; the table is in bench/results/latest.md`)
  }
  process.stdout.write(table)
  const missed = rows.filter((r) => r.pass === false).length
  log(`${rows.length} measures, ${missed} below target; ${Math.round(meta.seconds)} s; ${join(dir, `${base}.json`)}`)
}

await main()
