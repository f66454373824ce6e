import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { HotCounter, HotHistogram } from '../../src/metrics/hot-instruments.js'

const BOUNDS = [0.001, 0.01, 0.1, 1]
const OBSERVED = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.5, 1, 3, 0]

for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
  t.test(`the scrape reads exactly as prom-client's own instruments would (${contentType.split(';')[0]})`, async (t) => {
    const ours = new Registry()
    const theirs = new Registry()
    ours.setContentType(contentType as never)
    theirs.setContentType(contentType as never)
    const counter = new HotCounter('x_total', 'Things, by a and b.', ['a', 'b'], ['p', 'q'] as const, ['ok', 'bad'] as const, ours)
    const histogram = new HotHistogram('x_seconds', 'Time of things.', BOUNDS, ours)
    const reference = new Counter({ name: 'x_total', help: 'Things, by a and b.', labelNames: ['a', 'b'] as const, registers: [theirs] })
    const referenceHistogram = new Histogram({ name: 'x_seconds', help: 'Time of things.', buckets: BOUNDS, registers: [theirs] })
    for (const a of ['p', 'q'] as const) for (const b of ['ok', 'bad'] as const) reference.labels(a, b).inc(0)

    counter.child('p', 'ok').inc()
    counter.child('p', 'ok').inc()
    counter.child('q', 'bad').inc(5)
    reference.labels('p', 'ok').inc(2)
    reference.labels('q', 'bad').inc(5)
    for (const value of OBSERVED) {
      histogram.observe(value)
      referenceHistogram.observe(value)
    }
    t.equal(await ours.metrics(), await theirs.metrics())
  })
}

t.test('a value on a bound is in that bucket; above the last, only in +Inf; sum and count', async (t) => {
  const registry = new Registry()
  const histogram = new HotHistogram('y_seconds', 'Y.', BOUNDS, registry)
  for (const value of [0.001, 0.1, 2]) histogram.observe(value)
  const text = await registry.metrics()
  t.match(text, /y_seconds_bucket\{le="0\.001"\} 1\n/)
  t.match(text, /y_seconds_bucket\{le="0\.01"\} 1\n/)
  t.match(text, /y_seconds_bucket\{le="0\.1"\} 2\n/)
  t.match(text, /y_seconds_bucket\{le="1"\} 2\n/)
  t.match(text, /y_seconds_bucket\{le="\+Inf"\} 3\n/)
  t.match(text, /y_seconds_sum 2\.101\n/)
  t.match(text, /y_seconds_count 3/)
  registry.resetMetrics()
  t.match(await registry.metrics(), /y_seconds_count 0/, 'the registry resets it')
})
