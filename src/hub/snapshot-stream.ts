import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import type { PresenceEngine } from '../presence/presence-engine.js'
import type { SnapshotParts } from '../presence/snapshot-parts.js'
import { OPEN, type Connection } from './connection.js'
import { foldDiff, type Sender } from './sender.js'
import type { Visibility } from '../auth/visibility.js'
import { reasonOf } from '../log/logger.js'

/** The `,` between the parts of the snapshot's array. */
const COMMA = Buffer.from(',')

/** The sockets by the visibility of their tokens: those of one visibility get the same text. */
function byVisibility(conns: readonly Connection[]): Map<Visibility, Connection[]> {
  const groups = new Map<string, [Visibility, Connection[]]>()
  for (const conn of conns) {
    const group = groups.get(conn.visibility.key)
    if (group === undefined) groups.set(conn.visibility.key, [conn.visibility, [conn]])
    else group[1].push(conn)
  }
  return new Map(groups.values())
}

export interface SnapshotStreamOptions {
  engine: PresenceEngine
  sender: Sender
  /** The sockets the hub serves: one dropped meanwhile gets no more of a snapshot. */
  connections: ReadonlySet<Connection>
  drop: (conn: Connection) => void
  /** Backoff of a snapshot read that failed (the engine unavailable), ms: doubles from min up to max. */
  retryMinMs: number
  retryMaxMs: number
  now: () => number
  log: FastifyBaseLogger
}

/**
 * Reads snapshots for the sockets that ask for one and streams each part as it is read, as
 * fragments of one message (`{"type":"snapshot","seq":…,"at":…,"online":[` + the parts +
 * `]}`) to every socket that waits for it: each part serialised and encoded once per
 * visibility (the contacts of the clients the sockets' tokens see), then sent as it is. One read at a time; the sockets that ask meanwhile share the next. A read that
 * fails is tried again with backoff.
 */
export class SnapshotStream {
  /** Sockets waiting for a read to begin, in the order they asked. */
  private waiting: Connection[] = []
  private reading = false
  private closed = false
  /** The next read after a failed one; no read starts before it. */
  private retryTimer: NodeJS.Timeout | undefined
  /** Snapshot reads failed in a row. */
  private failures = 0

  constructor(private readonly options: SnapshotStreamOptions) {}

  /** The socket gets a new snapshot; it holds the feed's changes until then. */
  request(conn: Connection): void {
    if (!conn.handoff.ask()) return
    this.waiting.push(conn)
    void this.read()
  }

  /** A dropped socket waits no more. */
  forget(conn: Connection): void {
    this.waiting = this.waiting.filter((c) => c !== conn)
  }

  /** No read starts from now on. */
  close(): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.waiting = []
  }

  private async read(): Promise<void> {
    if (this.reading || this.closed || this.retryTimer !== undefined) return
    this.reading = true
    // Only sockets that were waiting when the read began may share it: each one holds changes
    // from the start of the read, so nothing between the read and the socket is missed, and
    // what it held from before (a read that failed) is in the snapshot.
    const batch = this.waiting
    this.waiting = []
    for (const conn of batch) conn.handoff.readBegins()
    const started = new Set<Connection>()
    try {
      await this.stream(batch, started)
      if (this.failures > 0) this.options.log.info({ failures: this.failures }, 'snapshot read again; the waiting dashboards have theirs')
      this.failures = 0
    } catch (error) {
      this.failed(batch, started, error)
    } finally {
      this.reading = false
      if (this.waiting.length > 0) void this.read()
    }
  }

  /** Reads one snapshot and sends it to the sockets of `batch`; `started` gets those whose message has begun. */
  private async stream(batch: readonly Connection[], started: Set<Connection>): Promise<void> {
    const { engine, sender, connections, now } = this.options
    const open = (): Connection[] => [...started].filter((conn) => connections.has(conn) && conn.socket.readyState === OPEN)
    const at = now()
    const reader = engine.snapshotParts()
    // The heads go with the first part read (or the end): a read that fails at once leaves no message begun.
    let begun = false
    const beginAll = (): void => {
      if (begun) return
      begun = true
      const rest = Buffer.from(`,"at":${at},"online":`)
      for (const conn of batch) {
        if (!connections.has(conn) || !sender.begin(conn)) continue
        started.add(conn)
        conn.socket.send(Buffer.concat([sender.head(conn, 'snapshot'), rest]), { binary: false, fin: false })
      }
    }
    // Per visibility (the clients a token sees): the bytes of the array sent so far, shared by its sockets.
    const sentBytes = new Map<string, number>()
    for await (const part of reader.parts) {
      if (part.size === 0) continue
      beginAll()
      for (const [visibility, conns] of byVisibility(open())) {
        const json = part.json(visibility.all ? undefined : visibility.sees)
        if (json === undefined) continue
        // `[a,b]`: the first part opens the array, the later ones go on with `,a,b`; `]` ends it.
        // The part's text is never changed: other visibilities may be sent the same bytes, and
        // sockets may still hold them queued. A later part's `,` goes as a fragment of its own.
        const before = sentBytes.get(visibility.key) ?? 0
        const body = json.subarray(before > 0 ? 1 : 0, json.length - 1)
        sentBytes.set(visibility.key, before + body.length + (before > 0 ? 1 : 0))
        for (const conn of conns) {
          if (before > 0) conn.socket.send(COMMA, { binary: false, fin: false })
          conn.socket.send(body, { binary: false, fin: false })
        }
      }
    }
    beginAll()
    for (const conn of open()) {
      const bytes = sentBytes.get(conn.visibility.key) ?? 0
      conn.socket.send(Buffer.from(bytes === 0 ? '[]}' : ']}'), { binary: false, fin: true })
      this.goLive(conn, reader, bytes)
    }
  }

  /** After the last part of its snapshot: the changes it does not hold go as one diff, and the socket is live. */
  private goLive(conn: Connection, reader: SnapshotParts, bytes: number): void {
    conn.snapshotBytes = bytes
    const newer = conn.handoff.readEnds(reader)
    if (newer === undefined) return
    const catchUp = foldDiff(newer, this.options.now)
    if (catchUp !== undefined) this.options.sender.sendDiff(conn, catchUp)
  }

  /**
   * The engine is unavailable (Redis away, or back on the subscriber before the command
   * connection after a reconnect): the dashboards stay open and wait, and the read is tried
   * again with backoff until it succeeds. Only a socket whose message had begun cannot take
   * another in the middle of it: it is closed and reconnects.
   */
  private failed(batch: readonly Connection[], started: ReadonlySet<Connection>, error: unknown): void {
    const { connections, drop, retryMinMs, retryMaxMs, log } = this.options
    this.failures += 1
    const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(this.failures - 1, 16))
    if (this.failures === 1) log.warn({ reason: reasonOf(error), retryInMs: delay }, 'snapshot failed; the dashboards wait for it')
    for (const conn of started) {
      drop(conn)
      conn.socket.close(CLOSE_CODES.snapshotInterrupted.code, CLOSE_CODES.snapshotInterrupted.reason)
    }
    const again = batch.filter((conn) => connections.has(conn) && !started.has(conn) && conn.handoff.readFailed())
    this.waiting = [...again, ...this.waiting]
    if (this.closed) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      void this.read()
    }, delay)
  }
}
