/**
 * The timers of the demo traffic. The real one is Node's; a test passes one driven by its own
 * clock, so minutes of browsing are played without sleeping.
 */
export interface Scheduler {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/**
 * Node's timers. They hold the process like the app's other timers do until the traffic is
 * stopped (app.close()), so a test of close finds one left behind.
 */
export const realScheduler: Scheduler = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout)
  },
}
