import type { FastifyBaseLogger } from 'fastify'

/** An error in one line for the log: its code and message, no stack. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
}

export interface WriterHealthOptions {
  log: FastifyBaseLogger
  now: () => number
  /** ms the loop may go on failing before it counts as stalled. */
  stallAfterMs: number
  /** Backoff after a failure, ms: doubles from min up to max. */
  retryMinMs: number
  retryMaxMs: number
}

/**
 * The writer loop's run of failures: the backoff before the next attempt, whether it is
 * stalled (readiness says so), and the log lines at the changes of state, not at every
 * attempt, so a long outage is not a log flood.
 */
export class WriterHealth {
  private failures = 0
  /** When the current run of failures began; undefined while the loop succeeds. */
  private failingSince: number | undefined
  private stallAnnounced = false

  constructor(private readonly options: WriterHealthOptions) {}

  /** Failing for `stallAfterMs` or longer. */
  get stalled(): boolean {
    return this.failingSince !== undefined && this.options.now() - this.failingSince >= this.options.stallAfterMs
  }

  /** The loop starts afresh. */
  reset(): void {
    this.failingSince = undefined
  }

  succeeded(): void {
    const { log, now } = this.options
    if (this.failures > 0) log.info({ failures: this.failures, failedForMs: now() - (this.failingSince ?? now()) }, 'activity writer: writing again')
    this.failures = 0
    this.failingSince = undefined
    this.stallAnnounced = false
  }

  /** Records a failure; returns the ms to wait before the next attempt. */
  failed(error: unknown): number {
    const { log, now, retryMinMs, retryMaxMs } = this.options
    this.failures += 1
    this.failingSince ??= now()
    const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(this.failures - 1, 16))
    if (this.failures === 1) log.warn({ reason: describe(error), retryInMs: delay }, 'activity writer: write failed; the events wait in the stream')
    if (!this.stallAnnounced && this.stalled) {
      this.stallAnnounced = true
      log.warn({ reason: describe(error), failures: this.failures, failingForMs: now() - this.failingSince }, 'activity writer: stalled; readiness fails until it writes again')
    }
    return delay
  }
}
