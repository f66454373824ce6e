import type { OnlinePoint, SessionSpan } from './activity-store.js'

/** The ranges of /admin/api/stats/online: how far back, and how wide one point is. */
export const STATS_RANGES = {
  '1h': { spanMs: 3_600_000, bucketMs: 60_000 },
  '24h': { spanMs: 86_400_000, bucketMs: 600_000 },
  '7d': { spanMs: 604_800_000, bucketMs: 3_600_000 },
} as const
export type StatsRange = keyof typeof STATS_RANGES

/** One point per bucket that has samples: the most contacts online at once in it. */
export function bucketPoints(samples: readonly OnlinePoint[], bucketMs: number): OnlinePoint[] {
  const points: OnlinePoint[] = []
  for (const sample of samples) {
    const bucketStart = Math.floor(sample.t / bucketMs) * bucketMs
    const last = points[points.length - 1]
    if (last !== undefined && last.t === bucketStart) last.online = Math.max(last.online, sample.online)
    else points.push({ t: bucketStart, online: sample.online })
  }
  return points
}

/**
 * How many of `spans` were open at each of `instants` (ascending): begun at or before it and
 * not ended by it. One pass over the instants and the sorted starts and ends.
 */
export function onlineAt(instants: readonly number[], spans: readonly SessionSpan[]): OnlinePoint[] {
  const starts = spans.map((span) => span.startedAt).sort((a, b) => a - b)
  const ends = spans.flatMap((span) => (span.endedAt === null ? [] : [span.endedAt])).sort((a, b) => a - b)
  const points: OnlinePoint[] = []
  let started = 0
  let ended = 0
  for (const t of instants) {
    while (started < starts.length && (starts[started] as number) <= t) started += 1
    while (ended < ends.length && (ends[ended] as number) <= t) ended += 1
    points.push({ t, online: started - ended })
  }
  return points
}
