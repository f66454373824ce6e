import { AppError } from '../errors/errors.js'
import type { PresenceEngine } from './presence-engine.js'

/** Calls `tick` every `intervalMs` until the returned function is called. */
export type Repeat = (tick: () => void, intervalMs: number) => () => void

/** setInterval, unreferenced: the sweeper alone never keeps the process alive. */
const repeatWithTimer: Repeat = (tick, intervalMs) => {
  const timer = setInterval(tick, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}

export interface SweeperOptions {
  presence: Pick<PresenceEngine, 'sweep'>
  /** ms between sweeps. */
  intervalMs: number
  log: { warn(obj: object, msg: string): void }
  /** The timer; tests pass one they tick by hand. */
  repeat?: Repeat
}

export interface Sweeper {
  start(): void
  stop(): void
  /** One sweep, skipped while the one before still runs; never rejects. */
  sweepOnce(): Promise<void>
}

/**
 * Ends the presence of tabs that stopped beating: asks the engine to sweep on a timer, one
 * sweep at a time (a slow engine gets no pile of overlapping sweeps).
 */
export function createSweeper({ presence, intervalMs, log, repeat = repeatWithTimer }: SweeperOptions): Sweeper {
  let running: Promise<void> | undefined
  let cancel: (() => void) | undefined

  function sweepOnce(): Promise<void> {
    if (running !== undefined) return running
    running = presence.sweep().then(
      () => undefined,
      (error: unknown) => {
        // An unavailable engine logs that itself, once, not once a sweep.
        if (!(error instanceof AppError && error.code === 'unavailable')) log.warn({ err: error }, 'sweep failed')
      },
    ).finally(() => {
      running = undefined
    })
    return running
  }

  return {
    start() {
      cancel ??= repeat(() => void sweepOnce(), intervalMs)
    },
    stop() {
      cancel?.()
      cancel = undefined
    },
    sweepOnce,
  }
}
