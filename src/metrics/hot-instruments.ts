/**
 * The two instruments every heartbeat touches, as prom-client metric objects of our own: a
 * labelled counter whose children are slots of a Float64Array, and a histogram whose buckets
 * are. prom-client's own children hash their label set on every inc() and observe(); these
 * count with an index and an add, and build the samples only when /metrics is scraped. The
 * registry takes any object with a name, help, type and get() (prom-client's Metric shape), so
 * the text format, OpenMetrics included, is prom-client's.
 */
import type { Registry } from 'prom-client'

/** What the registry reads of a metric when it is scraped (prom-client's types name the type by an enum; its code, by the text). */
interface Collected {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[]
}

export interface HotChild {
  inc(value?: number): void
}

/** A counter with two labels, every combination made up front and reported from the first scrape. */
export class HotCounter<A extends string, B extends string> {
  readonly type = 'counter' as const
  readonly aggregator = 'sum' as const
  private readonly counts: Float64Array
  private readonly children: Map<A, Map<B, HotChild>>

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly [string, string],
    private readonly first: readonly A[],
    private readonly second: readonly B[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(first.length * second.length)
    const counts = this.counts
    this.children = new Map(first.map((a, i) => [a, new Map(second.map((b, j) => {
      const slot = i * second.length + j
      return [b, { inc: (value = 1) => { counts[slot] = (counts[slot] as number) + value } }]
    }))]))
    registry.registerMetric(this as never)
  }

  child(a: A, b: B): HotChild {
    return this.children.get(a)?.get(b) as HotChild
  }

  async get(): Promise<Collected> {
    const values: Collected['values'] = []
    const [la, lb] = this.labelNames
    this.first.forEach((a, i) => {
      this.second.forEach((b, j) => values.push({ value: this.counts[i * this.second.length + j] as number, labels: { [la]: a, [lb]: b } }))
    })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset(): void {
    this.counts.fill(0)
  }
}

/** A histogram without labels: a bucket count per upper bound, the sum and the count. */
export class HotHistogram {
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  private readonly bounds: Float64Array
  /** Per bucket (not cumulative), the last one +Inf. */
  private readonly buckets: Float64Array
  private sum = 0
  private count = 0

  constructor(readonly name: string, readonly help: string, bounds: readonly number[], registry: Registry) {
    this.bounds = Float64Array.from(bounds)
    this.buckets = new Float64Array(bounds.length + 1)
    registry.registerMetric(this as never)
  }

  observe(value: number): void {
    const { bounds } = this
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i += 1
    this.buckets[i] = (this.buckets[i] as number) + 1
    this.sum += value
    this.count += 1
  }

  async get(): Promise<Collected> {
    const values: Collected['values'] = []
    let cumulative = 0
    for (let i = 0; i <= this.bounds.length; i += 1) {
      cumulative += this.buckets[i] as number
      values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.bounds.length ? (this.bounds[i] as number) : '+Inf' }, value: cumulative })
    }
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum })
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset(): void {
    this.buckets.fill(0)
    this.sum = 0
    this.count = 0
  }
}
