import type { ActivityEvent, ActivityEventSource } from '../event-log/event-log.js'

/**
 * The batches being written at once, up to `depth`, and the first failure among them. The
 * next batch starts as soon as the one before holds its contacts' locks, so this process
 * prepares and reads while the database writes.
 */
export class BatchesInFlight {
  private readonly writing = new Set<Promise<void>>()
  private failure: { error: unknown } | undefined

  constructor(private readonly depth: number) {}

  /**
   * Starts a batch's write (given the function to call once it holds its contacts); resolves
   * once it holds them or has settled, and fewer than `depth` batches are being written.
   */
  async add(write: (onLocked: () => void) => Promise<void>): Promise<void> {
    let onLocked!: () => void
    const locked = new Promise<void>((resolve) => {
      onLocked = resolve
    })
    const job = write(onLocked).then(
      () => {
        this.writing.delete(job)
      },
      (error: unknown) => {
        this.writing.delete(job)
        this.failure ??= { error }
      },
    )
    this.writing.add(job)
    await Promise.race([locked, job])
    while (this.writing.size >= this.depth) await Promise.race(this.writing)
  }

  /** Throws the first failure of a batch since the last clearFailure(). */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error
  }

  clearFailure(): void {
    this.failure = undefined
  }

  /** Resolves once every batch being written has committed or failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writing])
  }
}

/**
 * The next batch read while this one is written: the stream read and the database work
 * overlap, and a backlog drains faster by the read time.
 */
export class ReadAhead {
  private ahead: Promise<ActivityEvent[]> | undefined

  constructor(
    private readonly source: ActivityEventSource,
    private readonly batchSize: number,
  ) {}

  /** The batch read ahead, else one read now that waits up to `waitMs` for events. */
  next(waitMs: number): Promise<ActivityEvent[]> {
    const events = this.ahead ?? this.source.read(this.batchSize, waitMs)
    this.ahead = undefined
    return events
  }

  /** Starts reading the batch after. */
  readNext(): void {
    this.ahead = this.source.read(this.batchSize, 0)
    // Awaited by next() or dropped by drop() (then retry() hands its events out again).
    this.ahead.catch(() => {})
  }

  /** Waits for the read ahead to finish and forgets it: its events are not written by this loop. */
  async drop(): Promise<void> {
    if (this.ahead !== undefined) await this.ahead.catch(() => [])
    this.ahead = undefined
  }
}
