import t from 'tap'
import { createSweeper, type Repeat } from '../../src/presence/sweeper.js'
import { AppError } from '../../src/errors/errors.js'

/** A timer ticked by hand: `tick()` is one interval passing. */
function handTimer(): { repeat: Repeat; tick(): void; readonly intervals: number[]; readonly running: boolean } {
  let current: (() => void) | undefined
  const intervals: number[] = []
  return {
    repeat(tick, intervalMs) {
      intervals.push(intervalMs)
      current = tick
      return () => {
        current = undefined
      }
    },
    tick: () => current?.(),
    intervals,
    get running() {
      return current !== undefined
    },
  }
}

/** An engine whose sweeps finish when the test says so. */
function heldEngine(): { sweep(): Promise<number>; readonly calls: number; finish(error?: Error): void } {
  let calls = 0
  let settle: ((error?: Error) => void) | undefined
  return {
    sweep() {
      calls += 1
      return new Promise<number>((resolve, reject) => {
        settle = (error) => (error === undefined ? resolve(0) : reject(error))
      })
    },
    get calls() {
      return calls
    },
    finish(error) {
      settle?.(error)
      settle = undefined
    },
  }
}

function captureWarnings(): { warn(obj: object, msg: string): void; lines: string[] } {
  const lines: string[] = []
  return { warn: (_obj: object, msg: string) => void lines.push(msg), lines }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('sweeps on every tick of its timer, started once, stopped by stop()', async (t) => {
  const timer = handTimer()
  const engine = heldEngine()
  const sweeper = createSweeper({ presence: engine, intervalMs: 1000, log: captureWarnings(), repeat: timer.repeat })
  t.equal(timer.running, false, 'nothing runs before start()')
  sweeper.start()
  sweeper.start()
  t.same(timer.intervals, [1000], 'one timer, at the interval asked for')
  timer.tick()
  t.equal(engine.calls, 1)
  engine.finish()
  await turn()
  timer.tick()
  t.equal(engine.calls, 2, 'the next tick sweeps again')
  engine.finish()
  sweeper.stop()
  t.equal(timer.running, false, 'stop() cancels the timer')
})

t.test('a sweep still running when the timer ticks is not doubled', async (t) => {
  const timer = handTimer()
  const engine = heldEngine()
  const sweeper = createSweeper({ presence: engine, intervalMs: 1000, log: captureWarnings(), repeat: timer.repeat })
  sweeper.start()
  timer.tick()
  timer.tick()
  timer.tick()
  t.equal(engine.calls, 1, 'one sweep at a time')
  const waiting = sweeper.sweepOnce()
  engine.finish()
  await waiting
  timer.tick()
  t.equal(engine.calls, 2, 'once it finished, the next tick sweeps')
  engine.finish()
  sweeper.stop()
})

t.test('an unavailable engine is not logged on every sweep; other failures are', async (t) => {
  const timer = handTimer()
  const engine = heldEngine()
  const log = captureWarnings()
  const sweeper = createSweeper({ presence: engine, intervalMs: 1000, log, repeat: timer.repeat })
  sweeper.start()
  for (let i = 0; i < 5; i += 1) {
    timer.tick()
    engine.finish(new AppError('unavailable', 'Presence store (Redis) is unavailable.'))
    await turn()
  }
  t.equal(engine.calls, 5, 'it keeps sweeping through the outage')
  t.same(log.lines, [], 'the engine reports its own outage; the sweeper adds nothing')
  timer.tick()
  engine.finish(new Error('a bug'))
  await turn()
  t.same(log.lines, ['sweep failed'], 'any other failure is a warning')
  sweeper.stop()
})
