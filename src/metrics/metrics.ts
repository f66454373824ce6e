/**
 * What GET /metrics reports, in the Prometheus text format (prom-client). One registry per app,
 * so apps built side by side in one process (the tests) count apart. The instruments are
 * plain fields: the code that counts holds them, and the gauges read their sources when
 * scraped. With CAT_METRICS=off the same object exists and counts nothing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { HEARTBEAT_EVENTS, type HeartbeatEvent, type LeaveReason } from '../presence/presence-engine.js'
import { HotCounter, HotHistogram } from './hot-instruments.js'

/** How a heartbeat request ended, by its status: the `outcome` label of cat_heartbeats_total. */
export const HEARTBEAT_OUTCOMES = ['ok', 'invalid', 'unauthorized', 'consent_required', 'rate_limited', 'unavailable', 'error'] as const
export type HeartbeatOutcome = (typeof HEARTBEAT_OUTCOMES)[number]

export const LEAVE_REASONS: readonly LeaveReason[] = ['timeout', 'leave', 'idle', 'withdrawn']

/** The routes whose refusals cat_rate_limited_total counts (its `route` label). */
export const RATE_LIMITED_ROUTES = ['heartbeat', 'consent', 'admin', 'auth'] as const
export type RateLimitedRoute = (typeof RATE_LIMITED_ROUTES)[number]

/** The outcome of a heartbeat answered with `status`. */
export function heartbeatOutcome(status: number): HeartbeatOutcome {
  if (status < 300) return 'ok'
  switch (status) {
    case 400:
    case 413:
    case 414:
    case 431:
      return 'invalid'
    case 401:
      return 'unauthorized'
    case 403:
      return 'consent_required'
    case 429:
      return 'rate_limited'
    case 503:
      return 'unavailable'
    default:
      return 'error'
  }
}

/** Where the gauges read their values when scraped. */
export interface MetricSources {
  /** Contacts online in the site. */
  online(): Promise<number>
  /** Dashboards connected to this instance. */
  dashboards(): number
  /** Activity events not yet written. */
  backlog(): Promise<number>
  /** True when /readyz would answer 200. */
  ready(): Promise<boolean>
}

/** A counter that counts nothing: CAT_METRICS=off. */
const NOTHING = { inc: () => undefined, observe: () => undefined }

export interface CountingChild {
  inc(value?: number): void
}
export interface ObservingChild {
  observe(value: number): void
}

export interface Metrics {
  readonly enabled: boolean
  readonly registry: Registry
  /** cat_heartbeats_total's child for an event and an outcome ('unknown' event: one that did not validate). */
  heartbeats(event: HeartbeatEvent | 'unknown', outcome: HeartbeatOutcome): CountingChild
  readonly heartbeatDuration: ObservingChild
  readonly diffLatency: ObservingChild
  readonly sweepLag: ObservingChild
  leaves(reason: LeaveReason): CountingChild
  readonly feedResyncs: CountingChild
  readonly activityWritten: CountingChild
  readonly activityWriteErrors: CountingChild
  /** Presence webhook events delivered (the receiver answered 2xx). */
  readonly webhookDelivered: CountingChild
  /** Presence webhook events given up after the retry horizon. */
  readonly webhookDropped: CountingChild
  /** Presence webhook POSTs that failed (non-2xx, timeout, refused; retried). */
  readonly webhookFailures: CountingChild
  rateLimited(route: RateLimitedRoute): CountingChild
  /** Where the gauges read from; set once the parts they read are built. */
  setSources(sources: MetricSources): void
}

/** Buckets of a heartbeat's route time: from a tenth of a millisecond to a second. */
const HEARTBEAT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
/** Buckets from a change to its diff: the diff interval (CAT_DIFF_INTERVAL_MS) and what the feed adds. */
const DIFF_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10]
/** From a tab's expiry to its removal: the sweep interval (1 s) and what a busy Redis adds. */
const SWEEP_BUCKETS = [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60]

export function createMetrics(enabled: boolean): Metrics {
  const registry = new Registry()
  let sources: MetricSources | undefined
  new Gauge({
    name: 'cat_ready',
    help: 'Whether the instance is ready (1) or not (0), as GET /readyz answers.',
    registers: [registry],
    async collect() {
      if (sources !== undefined) this.set((await sources.ready()) ? 1 : 0)
    },
  })
  // The two a heartbeat touches count without prom-client's per-call label hashing (hot-instruments.ts).
  const heartbeats = new HotCounter('cat_heartbeats_total', 'Heartbeat requests answered, by event and outcome.', ['event', 'outcome'], [...HEARTBEAT_EVENTS, 'unknown'] as const, HEARTBEAT_OUTCOMES, registry)
  const heartbeatDuration = new HotHistogram('cat_heartbeat_duration_seconds', 'Time from a heartbeat request to its answer.', HEARTBEAT_BUCKETS, registry)
  new Gauge({
    name: 'cat_online_contacts',
    help: 'Contacts online in the site (every instance reports the whole site).',
    registers: [registry],
    async collect() {
      if (sources !== undefined) this.set(await sources.online())
    },
  })
  new Gauge({
    name: 'cat_dashboard_sockets',
    help: 'Dashboards connected to this instance.',
    registers: [registry],
    collect() {
      if (sources !== undefined) this.set(sources.dashboards())
    },
  })
  const diffLatency = new Histogram({ name: 'cat_diff_latency_seconds', help: 'Time from a presence change in the engine to the send of the diff that carries it.', buckets: DIFF_BUCKETS, registers: [registry] })
  const sweepLag = new Histogram({ name: 'cat_sweep_lag_seconds', help: 'Time from a contact\'s last tab\'s expiry to its leave reaching this instance.', buckets: SWEEP_BUCKETS, registers: [registry] })
  const leaves = new Counter({ name: 'cat_leaves_total', help: 'Contacts that left the site, by reason (every instance counts the whole site).', labelNames: ['reason'] as const, registers: [registry] })
  const feedResyncs = new Counter({ name: 'cat_feed_resyncs_total', help: 'Times the presence feed lost continuity (a gap, a reconnect) and the dashboards re-read it.', registers: [registry] })
  new Gauge({
    name: 'cat_activity_backlog_events',
    help: 'Activity events waiting to be written to the database, or with webhooks on to be delivered (the whole site).',
    registers: [registry],
    async collect() {
      if (sources !== undefined) this.set(await sources.backlog())
    },
  })
  const activityWritten = new Counter({ name: 'cat_activity_written_total', help: 'Activity events this instance wrote to the database.', registers: [registry] })
  const activityWriteErrors = new Counter({ name: 'cat_activity_write_errors_total', help: 'Batch writes of activity events that failed (retried).', registers: [registry] })
  const webhookDelivered = new Counter({ name: 'cat_webhook_delivered_total', help: 'Presence webhook events this instance delivered (the receiver answered 2xx).', registers: [registry] })
  const webhookDropped = new Counter({ name: 'cat_webhook_dropped_total', help: 'Presence webhook events this instance gave up on after retrying for the retry horizon.', registers: [registry] })
  const webhookFailures = new Counter({ name: 'cat_webhook_failures_total', help: 'Presence webhook POSTs that failed: non-2xx, timeout or no connection (retried).', registers: [registry] })
  const rateLimited = new Counter({ name: 'cat_rate_limited_total', help: 'Requests refused with 429, by route.', labelNames: ['route'] as const, registers: [registry] })
  if (enabled) collectDefaultMetrics({ register: registry })

  // The labelled children, made once: counting is then a field update.
  const leaveChildren = new Map(LEAVE_REASONS.map((reason) => [reason, enabled ? leaves.labels(reason) : NOTHING]))
  const limitedChildren = new Map(RATE_LIMITED_ROUTES.map((route) => [route, enabled ? rateLimited.labels(route) : NOTHING]))
  // Every label set is reported from the first scrape, at 0: a rate() sees its first increase.
  if (enabled) {
    for (const child of [...leaveChildren.values(), ...limitedChildren.values()]) child.inc(0)
  }

  return {
    enabled,
    registry,
    heartbeats: enabled ? (event, outcome) => heartbeats.child(event, outcome) : () => NOTHING,
    heartbeatDuration: enabled ? heartbeatDuration : NOTHING,
    diffLatency: enabled ? diffLatency : NOTHING,
    sweepLag: enabled ? sweepLag : NOTHING,
    leaves: (reason) => leaveChildren.get(reason) ?? NOTHING,
    feedResyncs: enabled ? feedResyncs : NOTHING,
    activityWritten: enabled ? activityWritten : NOTHING,
    activityWriteErrors: enabled ? activityWriteErrors : NOTHING,
    webhookDelivered: enabled ? webhookDelivered : NOTHING,
    webhookDropped: enabled ? webhookDropped : NOTHING,
    webhookFailures: enabled ? webhookFailures : NOTHING,
    rateLimited: (route) => limitedChildren.get(route) ?? NOTHING,
    setSources(next) {
      sources = next
    },
  }
}
