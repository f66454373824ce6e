import type { ActivityEvent, ActivityEventSource } from '../event-log/event-log.js'
import { BatchesInFlight, ReadAhead } from './batches-in-flight.js'
import type { WriterHealth } from './writer-health.js'

export interface WriterLoopOptions {
  source: ActivityEventSource
  batchSize: number
  /** Batches written at once. */
  depth: number
  /** ms a read waits for new events. */
  waitMs: number
  /** ms between looks for events other consumers left pending. */
  claimEveryMs: number
  /** Writes and acknowledges a batch; `onLocked` once it holds its contacts. */
  writeAndAck(events: readonly ActivityEvent[], onLocked: () => void): Promise<void>
  /** Takes over and writes events other consumers left pending. */
  claimStale(): Promise<unknown>
  health: WriterHealth
}

/**
 * The writer's background loop: reads a batch ahead while up to `depth` batches are written,
 * looks for stale events every `claimEveryMs`, and after a failure lets every batch in flight
 * settle, hands the unacknowledged events out again and backs off.
 */
export class WriterLoop {
  private running = false
  private loop: Promise<void> | undefined
  private wakeSleep: (() => void) | undefined

  constructor(private readonly options: WriterLoopOptions) {}

  get stalled(): boolean {
    return this.running && this.options.health.stalled
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.options.health.reset()
    this.loop = this.run()
  }

  /** Ends the loop once the batches in flight have settled. */
  async stop(): Promise<void> {
    this.running = false
    this.wakeSleep?.()
    await this.loop
  }

  private async run(): Promise<void> {
    const { source, batchSize, claimEveryMs, health } = this.options
    const inFlight = new BatchesInFlight(this.options.depth)
    const readAhead = new ReadAhead(source, batchSize)
    let lastClaim = 0
    while (this.running) {
      try {
        await this.writeNext(inFlight, readAhead)
        if (Date.now() - lastClaim >= claimEveryMs) {
          lastClaim = Date.now()
          await this.options.claimStale()
        }
        health.succeeded()
      } catch (error) {
        // Nothing is read again before every batch in flight has committed or failed.
        await inFlight.settled()
        inFlight.clearFailure()
        await readAhead.drop()
        source.retry()
        if (!this.running) break
        await this.sleep(health.failed(error))
      }
    }
    await inFlight.settled()
    // A batch read ahead is not written by this loop: hand it out again (to the drain at stop).
    await readAhead.drop()
    source.retry()
  }

  /** Starts writing the next batch (reading the one after it ahead); with none to read, waits for those in flight. */
  private async writeNext(inFlight: BatchesInFlight, readAhead: ReadAhead): Promise<void> {
    inFlight.throwIfFailed()
    const events = await readAhead.next(this.options.waitMs)
    if (events.length > 0) {
      readAhead.readNext()
      await inFlight.add((onLocked) => this.options.writeAndAck(events, onLocked))
    } else await inFlight.settled()
    inFlight.throwIfFailed()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.wakeSleep = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}
