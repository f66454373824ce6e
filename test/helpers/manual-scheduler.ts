import type { Scheduler } from '../../src/demo/scheduler.js'

export interface ManualScheduler extends Scheduler {
  /** Timers set and not yet fired or cleared. */
  pending(): number
  /**
   * Moves the clock `ms` forward, firing each timer due on the way in order of its time, with
   * the clock set to that time, and awaiting `settle()` after each (the work the timer started).
   */
  advance(ms: number, settle: () => Promise<void>): Promise<void>
}

/** Timers driven by a test's clock (helpers/app.ts createClock): minutes pass without sleeping. */
export function createManualScheduler(clock: { now(): number; set(ms: number): void }): ManualScheduler {
  const timers = new Map<number, { at: number; callback: () => void }>()
  let ids = 0
  return {
    setTimeout(callback, ms) {
      ids += 1
      timers.set(ids, { at: clock.now() + Math.max(0, ms), callback })
      return ids
    },
    clearTimeout(handle) {
      timers.delete(handle as number)
    },
    pending: () => timers.size,
    async advance(ms, settle) {
      const target = clock.now() + ms
      for (;;) {
        let next: [number, { at: number; callback: () => void }] | undefined
        // Map order is insertion order: among timers due at once, the first set fires first.
        for (const entry of timers) if (entry[1].at <= target && (next === undefined || entry[1].at < next[1].at)) next = entry
        if (next === undefined) break
        timers.delete(next[0])
        if (next[1].at > clock.now()) clock.set(next[1].at)
        next[1].callback()
        await settle()
      }
      clock.set(target)
    },
  }
}
