/**
 * Gathers heartbeats into script calls. Heartbeats are gathered over two turns of the event
 * loop (TURNS_BEFORE_SEND: the connections whose requests arrived together, and those that
 * arrived meanwhile), and while the last send is unanswered (MAX_IN_FLIGHT), and sent in the
 * order they arrived: each run of fast-path beats as one call of beat.lua, each run of the
 * others as one call of heartbeat.lua. Per heartbeat that saves a command in ioredis, a write
 * to the socket and a script call in Redis. The order matters: a beat queued before a leave of
 * the same tab must not come after it and open the tab again.
 */

/** Most beats in one call of beat.lua. */
export const BEATS_PER_CALL = 500

/** Most heartbeats in one call of heartbeat.lua. */
export const HEARTBEATS_PER_CALL = 100

/**
 * A queue goes out as soon as a heartbeat for the full script makes it this long: Redis then
 * runs those scripts while this process reads the next requests, where one call at the end of
 * the turn would leave each waiting for the other (bench/cpu.ts --event nav shows it).
 */
export const SEND_FULL_AT = 16

/**
 * Sends of queued heartbeats awaiting Redis's answer at a time: heartbeats that arrive while
 * one is unanswered wait for its answer and then go together, so under load the calls grow in
 * size, not in number: a write to a socket is a good part of a heartbeat's cost, and fewer,
 * larger calls cost Redis less per beat (bench/cpu.ts prints requests per script call).
 */
export const MAX_IN_FLIGHT = 1

/**
 * Turns of the event loop a send waits for, from the first heartbeat queued (or from Redis's
 * answer to the last send, when heartbeats queued meanwhile): three, so the requests whose
 * bytes arrived while the earlier turns' were handled are read and join the call. Under load
 * the answers of one call bring a wave of requests back over a few turns; with two, part of
 * the wave missed the call and waited a whole round trip for the next (bench/cpu.ts --wrk:
 * 49 requests a call against 43, and a p99 of 5–8 ms against 15–21). The wait is a poll of
 * the sockets, not a timer, so a lone heartbeat is not held back by a clock; a timer would cap
 * a client with few connections.
 */
export const TURNS_BEFORE_SEND = 3

/** A queued heartbeat: `fast` picks its script; it is settled with its result in the reply. */
export interface Batched {
  fast: boolean
  resolve(result: unknown): void
  reject(error: unknown): void
}

export interface BatcherOptions<Item extends Batched> {
  /** Sends a run of items of one kind as one call; resolves with a result per item, in order. */
  send(run: readonly Item[]): Promise<readonly unknown[]>
  /** Runs `fn` in the next turn of the event loop (setImmediate; tests step it by hand). */
  schedule?: (fn: () => void) => void
  /** Whether a send failed because Redis did not answer in time: what queued behind fails with it. */
  timedOut(error: unknown): boolean
}

export class Batcher<Item extends Batched> {
  private queue: Item[] = []
  /** Sends of the queue not answered yet. */
  private inFlight = 0
  /** Turns still to wait before the scheduled send; 0: none is scheduled. */
  private turnsLeft = 0
  private readonly send: (run: readonly Item[]) => Promise<readonly unknown[]>
  private readonly schedule: (fn: () => void) => void
  private readonly timedOut: (error: unknown) => boolean
  private readonly atTurnEnd = (): void => this.sendAtTurnEnd()
  private readonly sent = (error: unknown): void => this.answered(error)

  constructor(options: BatcherOptions<Item>) {
    this.send = options.send
    this.schedule = options.schedule ?? setImmediate
    this.timedOut = options.timedOut
  }

  /** Queues an item: it goes with the next send, or at once with the queue when that is long enough. */
  add(item: Item): void {
    this.queue.push(item)
    if (!item.fast && this.queue.length >= SEND_FULL_AT) this.flush()
    else if (this.inFlight < MAX_IN_FLIGHT) this.scheduleSend()
  }

  /** Sends everything queued, now, in order (a scheduled send still comes, for what queues meanwhile). */
  flush(): void {
    if (this.queue.length === 0) return
    const all = this.queue
    this.queue = []
    let start = 0
    const runs: Promise<unknown>[] = []
    for (let i = 1; i <= all.length; i += 1) {
      const first = all[start] as Item
      if (i === all.length || (all[i] as Item).fast !== first.fast || i - start === (first.fast ? BEATS_PER_CALL : HEARTBEATS_PER_CALL)) {
        runs.push(this.sendRun(all.slice(start, i)))
        start = i
      }
    }
    this.inFlight += 1
    // On a cluster the runs' calls may go to several nodes, which answer in any order: the
    // send ends with the last answer, and with the first error among them.
    if (runs.length === 1) void (runs[0] as Promise<unknown>).then(this.sent)
    else void Promise.all(runs).then((errors) => this.sent(errors.find((error) => error !== undefined)))
  }

  /** Resolves with the call's error, if it failed. */
  private sendRun(run: readonly Item[]): Promise<unknown> {
    return this.send(run).then(
      (results) => {
        for (let i = 0; i < run.length; i += 1) (run[i] as Item).resolve(results[i])
        return undefined
      },
      (error: unknown) => {
        for (const item of run) item.reject(error)
        return error
      },
    )
  }

  /** A send is answered; what queued meanwhile goes after the turns of the wait. */
  private answered(error: unknown): void {
    this.inFlight -= 1
    // Unanswered within the command timeout: Redis hangs, and what queued behind the call
    // would wait as long again for its own; it fails now, with it.
    if (this.timedOut(error)) {
      const waiting = this.queue
      this.queue = []
      for (const item of waiting) item.reject(error)
    }
    if (this.queue.length > 0) this.scheduleSend()
  }

  private scheduleSend(): void {
    if (this.turnsLeft > 0) return
    this.turnsLeft = TURNS_BEFORE_SEND
    this.schedule(this.atTurnEnd)
  }

  /** The end of a turn: after the last of the wait, the queue goes unless a send is still unanswered (its answer sends it). */
  private sendAtTurnEnd(): void {
    this.turnsLeft -= 1
    if (this.turnsLeft > 0) this.schedule(this.atTurnEnd)
    else if (this.inFlight < MAX_IN_FLIGHT) this.flush()
  }
}
