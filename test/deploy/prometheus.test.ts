/**
 * The shipped alert rules and Grafana dashboard, checked with Debian's promtool: the rules
 * load, fire on the series they are for (deploy/prometheus/alerts.test.yml), every dashboard
 * query is valid PromQL, and every metric either names is one the server reports.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { buildTestApp } from '../helpers/app.js'
import { parseMetrics } from '../helpers/metrics.js'

const run = promisify(execFile)
const PROMTOOL = '/usr/bin/promtool'
if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: run scripts/test-services.sh (apt-get install prometheus)`)

const ROOT = new URL('../../', import.meta.url).pathname
const ALERTS = join(ROOT, 'deploy/prometheus/alerts.yml')
const ALERT_TESTS = join(ROOT, 'deploy/prometheus/alerts.test.yml')
const DASHBOARD = join(ROOT, 'deploy/grafana/cat-presence.json')

interface Panel {
  title: string
  targets: { expr: string }[]
}

/** The metric names a PromQL expression reads (what precedes `{` or `[`), the functions and keywords aside. */
function metricNames(expr: string): string[] {
  const names = new Set<string>()
  for (const [, name] of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)) names.add(name as string)
  return [...names]
}

t.test('the alert rules load and fire on the series they are for', async (t) => {
  const checked = await run(PROMTOOL, ['check', 'rules', ALERTS])
  t.match(checked.stdout, /SUCCESS: 7 rules found/)
  const tested = await run(PROMTOOL, ['test', 'rules', ALERT_TESTS]).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`promtool test rules failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`)
  })
  t.match(tested.stdout, /SUCCESS/)
})

t.test('every query of the Grafana dashboard is valid PromQL', async (t) => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[] }
  t.equal(dashboard.uid, 'cat-presence')
  const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ title: panel.title, expr: target.expr })))
  t.ok(exprs.length >= 15, `${exprs.length} queries`)
  // Grafana's variables, as it substitutes them; each query as a recording rule promtool parses.
  const rules = {
    groups: [{ name: 'dashboard', rules: exprs.map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', 'cat') })) }],
  }
  const dir = mkdtempSync(join(tmpdir(), 'cat-grafana-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'dashboard-rules.yml')
  writeFileSync(file, JSON.stringify(rules))
  const checked = await run(PROMTOOL, ['check', 'rules', file]).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`a dashboard query is not valid PromQL:\n${error.stdout ?? ''}${error.stderr ?? ''}`)
  })
  t.match(checked.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`))
})

t.test('every metric the rules and the dashboard read is one the server reports', async (t) => {
  const app = await buildTestApp(t)
  const names = new Set(parseMetrics((await app.inject('/metrics')).body).map((sample) => sample.name))
  const alerts = readFileSync(ALERTS, 'utf8')
  const alertExprs = [...alerts.matchAll(/^\s+expr: (.+)$/gm)].map(([, expr]) => expr as string)
  t.equal(alertExprs.length, 7)
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }
  const read = [...alertExprs, ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr))].flatMap(metricNames)
  // `up` is Prometheus's own, for every target it scrapes.
  const missing = [...new Set(read)].filter((name) => name !== 'up' && !names.has(name))
  t.same(missing, [], 'no query reads a metric the server does not report')
  for (const name of ['cat_heartbeats_total', 'cat_heartbeat_duration_seconds_bucket', 'cat_online_contacts', 'cat_dashboard_sockets', 'cat_diff_latency_seconds_bucket', 'cat_sweep_lag_seconds_bucket', 'cat_leaves_total', 'cat_feed_resyncs_total', 'cat_activity_backlog_events', 'cat_activity_written_total', 'cat_activity_write_errors_total', 'cat_rate_limited_total', 'cat_ready']) {
    t.ok(names.has(name), `the server reports ${name}`)
  }
})
