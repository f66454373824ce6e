import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import type { FeedMessage, PresenceChange, PresenceEngine } from '../presence/presence-engine.js'
import type { SnapshotParts } from '../presence/snapshot-parts.js'
import { coalesce } from './coalesce.js'

export interface DiffHubOptions {
  engine: PresenceEngine
  /** ms over which changes are gathered into one diff. */
  diffIntervalMs: number
  /** Bytes a socket may have unsent beyond its last snapshot before it is closed with 1013. */
  sendBufferBytes?: number
  /** ms between WebSocket pings; a socket that did not answer the previous one is dropped. */
  keepaliveMs?: number
  /** Backoff of a snapshot read that failed (the engine unavailable), ms: doubles from min up to max. */
  retryMinMs?: number
  retryMaxMs?: number
  now: () => number
  log: FastifyBaseLogger
}

export interface DiffHub {
  /** Takes over an authenticated dashboard socket: snapshot first, then diffs. */
  add(socket: WebSocket): void
  readonly size: number
  /** Closes every socket with `code` and stops listening to the feed. */
  close(code?: number, reason?: string): void
}

interface Change {
  n: number
  change: PresenceChange
}

interface Connection {
  socket: WebSocket
  seq: number
  /** Highest feed position reflected in what this socket was sent. */
  seenN: number
  /** Changes received while its snapshot is being read and sent; undefined once live. */
  pending: Change[] | undefined
  /**
   * The snapshot last sent, until the feed passes the highest of its positions: changes to a
   * contact at or below its position there are in it (SnapshotParts.position).
   */
  sent: SnapshotParts | undefined
  /** Size of the last snapshot sent: the send-buffer bound allows for it. */
  snapshotBytes: number
  alive: boolean
}

const OPEN = 1

const COMMA = 0x2c

/** A diff this long goes as fragments (head, then the shared text) instead of one copy per socket. */
const FRAGMENT_ABOVE = 64 * 1024

export function createDiffHub(options: DiffHubOptions): DiffHub {
  const { engine, diffIntervalMs, sendBufferBytes = 4 * 1024 * 1024, keepaliveMs = 30_000, retryMinMs = 100, retryMaxMs = 5_000, now, log } = options
  const connections = new Set<Connection>()
  let window: Change[] = []
  let flushTimer: NodeJS.Timeout | undefined
  let waiting: Connection[] = []
  let fetching = false
  let closed = false
  /** The next read after a failed one; no read starts before it. */
  let retryTimer: NodeJS.Timeout | undefined
  /** Snapshot reads failed in a row. */
  let failures = 0

  /**
   * Starts a message: false (and nothing sent) when the socket is gone or too slow. A
   * dashboard that cannot keep up is closed rather than allowed to grow our memory; it
   * reconnects and starts again from a snapshot.
   */
  function begin(conn: Connection): boolean {
    if (conn.socket.readyState !== OPEN) return false
    if (conn.socket.bufferedAmount > sendBufferBytes + conn.snapshotBytes) {
      const { code, reason } = CLOSE_CODES.tryAgainLater
      log.warn({ buffered: conn.socket.bufferedAmount }, 'dashboard socket too slow; closing')
      drop(conn)
      conn.socket.close(code, reason)
      return false
    }
    conn.seq += 1
    return true
  }

  /** The head of a message: its type and the socket's own seq. Text: the bytes are UTF-8 (ws would send a Buffer as binary). */
  const head = (conn: Connection, type: 'snapshot' | 'diff'): Buffer => Buffer.from(`{"type":"${type}","seq":${conn.seq}`)

  /**
   * A diff: `text` is the message after its seq (`,"at":…}`), serialised and encoded once for
   * many sockets. A long one goes as two fragments, the socket's head and then the shared text
   * as it is, rather than a copy per socket.
   */
  function sendDiff(conn: Connection, text: Buffer): void {
    if (!begin(conn)) return
    if (text.length < FRAGMENT_ABOVE) {
      conn.socket.send(Buffer.concat([head(conn, 'diff'), text]), { binary: false })
      return
    }
    conn.socket.send(head(conn, 'diff'), { binary: false, fin: false })
    conn.socket.send(text, { binary: false, fin: true })
  }

  function diffText(changes: Change[]): Buffer | undefined {
    const diff = coalesce(changes.map((c) => c.change))
    if (diff === undefined) return undefined
    return Buffer.from(`,"at":${now()},"joined":${JSON.stringify(diff.joined)},"updated":${JSON.stringify(diff.updated)},"left":${JSON.stringify(diff.left)}}`)
  }

  const contactOf = (change: PresenceChange): string => (change.kind === 'left' ? change.left.contactId : change.presence.contactId)

  /** The changes a socket has not seen: after its position, and after its snapshot's for the contact. */
  function unseen(conn: Connection, changes: readonly Change[]): Change[] {
    const { sent } = conn
    return changes.filter((c) => c.n > conn.seenN && (sent === undefined || c.n > sent.position(contactOf(c.change))))
  }

  /** Once a socket's position passes all of its snapshot's, the snapshot no longer matters to it. */
  function forgetSent(conn: Connection): void {
    if (conn.sent !== undefined && conn.seenN >= conn.sent.highest) conn.sent = undefined
  }

  function flush(): void {
    flushTimer = undefined
    if (window.length === 0) return
    const changes = window
    window = []
    const last = (changes[changes.length - 1] as Change).n
    // Sockets that have seen the same feed position get the same text, serialised once.
    const byPosition = new Map<number, Buffer | undefined>()
    for (const conn of connections) {
      if (conn.pending !== undefined) continue
      let text: Buffer | undefined
      if (conn.sent !== undefined) text = diffText(unseen(conn, changes))
      else {
        if (!byPosition.has(conn.seenN)) byPosition.set(conn.seenN, diffText(unseen(conn, changes)))
        text = byPosition.get(conn.seenN)
      }
      conn.seenN = Math.max(conn.seenN, last)
      forgetSent(conn)
      if (text !== undefined) sendDiff(conn, text)
    }
  }

  function onFeed(message: FeedMessage): void {
    if (message.type === 'reset') {
      for (const conn of connections) requestSnapshot(conn)
      return
    }
    const change: Change = { n: message.position, change: message.change }
    for (const conn of connections) conn.pending?.push(change)
    window.push(change)
    if (flushTimer === undefined) flushTimer = setTimeout(flush, diffIntervalMs)
  }

  /**
   * After the last part of its snapshot: the changes that came in meanwhile, those the parts
   * do not hold, as one diff; from then on the socket is live. A socket that asked for another
   * snapshot meanwhile waits for that one instead, still collecting.
   */
  function goLive(conn: Connection, reader: SnapshotParts, bytes: number): void {
    conn.snapshotBytes = bytes
    if (waiting.includes(conn)) return
    const pending = conn.pending ?? []
    conn.pending = undefined
    // Every position is at or above the lowest: the changes after a contact's own position.
    const newer = pending.filter((c) => c.n > reader.position(contactOf(c.change)))
    conn.seenN = Math.max(reader.lowest, pending.length > 0 ? (pending[pending.length - 1] as Change).n : 0)
    conn.sent = reader
    forgetSent(conn)
    const catchUp = diffText(newer)
    if (catchUp !== undefined) sendDiff(conn, catchUp)
  }

  /**
   * Reads a snapshot in parts and sends each part as it comes, as fragments of one message
   * (`{"type":"snapshot","seq":…,"at":…,"online":[` + the parts + `]}`) to every socket that
   * waits for it: each part serialised and encoded once, then sent as it is.
   */
  async function fetchSnapshots(): Promise<void> {
    if (fetching || closed || retryTimer !== undefined) return
    fetching = true
    // Only sockets that were waiting when the read began may share it: each one's pending
    // list starts with the read, so nothing between the read and the socket is missed, and
    // what it held from before (a read that failed) is in the snapshot.
    const batch = waiting
    waiting = []
    for (const conn of batch) conn.pending = []
    const started = new Set<Connection>()
    const open = (): Connection[] => [...started].filter((conn) => connections.has(conn) && conn.socket.readyState === OPEN)
    try {
      const at = now()
      const reader = engine.snapshotParts()
      // The heads go with the first part read (or the end): a read that fails at once leaves no message begun.
      let begun = false
      const beginAll = (): void => {
        if (begun) return
        begun = true
        const rest = Buffer.from(`,"at":${at},"online":`)
        for (const conn of batch) {
          if (!connections.has(conn) || !begin(conn)) continue
          started.add(conn)
          conn.socket.send(Buffer.concat([head(conn, 'snapshot'), rest]), { binary: false, fin: false })
        }
      }
      let bytes = 0
      for await (const part of reader.parts) {
        if (part.length === 0) continue
        const json = Buffer.from(JSON.stringify(part))
        // `[a,b]`: the first part opens the array, the later ones go on with `,a,b`; `]` ends it.
        if (bytes > 0) json[0] = COMMA
        const body = json.subarray(0, json.length - 1)
        bytes += body.length
        beginAll()
        for (const conn of open()) conn.socket.send(body, { binary: false, fin: false })
      }
      beginAll()
      const end = Buffer.from(bytes === 0 ? '[]}' : ']}')
      for (const conn of open()) {
        conn.socket.send(end, { binary: false, fin: true })
        goLive(conn, reader, bytes)
      }
      if (failures > 0) log.info({ failures }, 'snapshot read again; the waiting dashboards have theirs')
      failures = 0
    } catch (error) {
      // The engine is unavailable (Redis away, or back on the subscriber before the command
      // connection after a reconnect): the dashboards stay open and wait, and the read is
      // tried again with backoff until it succeeds. Only a socket whose message had begun
      // cannot take another in the middle of it: it is closed and reconnects.
      failures += 1
      const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures - 1, 16))
      if (failures === 1) log.warn({ reason: error instanceof Error ? error.message : String(error), retryInMs: delay }, 'snapshot failed; the dashboards wait for it')
      for (const conn of started) {
        drop(conn)
        conn.socket.close(CLOSE_CODES.snapshotInterrupted.code, CLOSE_CODES.snapshotInterrupted.reason)
      }
      const again = batch.filter((conn) => connections.has(conn) && !started.has(conn) && !waiting.includes(conn))
      waiting = [...again, ...waiting]
      if (!closed) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined
          void fetchSnapshots()
        }, delay)
      }
    } finally {
      fetching = false
      if (waiting.length > 0) void fetchSnapshots()
    }
  }

  function requestSnapshot(conn: Connection): void {
    if (conn.pending !== undefined && waiting.includes(conn)) return
    conn.pending = []
    waiting.push(conn)
    void fetchSnapshots()
  }

  function drop(conn: Connection): void {
    connections.delete(conn)
    waiting = waiting.filter((c) => c !== conn)
  }

  const unsubscribe = engine.onFeed(onFeed)
  const keepalive = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        drop(conn)
        conn.socket.terminate()
        continue
      }
      conn.alive = false
      conn.socket.ping()
    }
  }, keepaliveMs)
  keepalive.unref()

  return {
    add(socket) {
      const conn: Connection = { socket, seq: 0, seenN: 0, pending: undefined, sent: undefined, snapshotBytes: 0, alive: true }
      connections.add(conn)
      socket.on('pong', () => {
        conn.alive = true
      })
      socket.on('message', (data, isBinary) => {
        let type: unknown
        try {
          type = isBinary ? undefined : (JSON.parse(data.toString()) as { type?: unknown }).type
        } catch {
          type = undefined
        }
        if (type === 'resync') {
          requestSnapshot(conn)
          return
        }
        const { code, reason } = CLOSE_CODES.policyViolation
        drop(conn)
        socket.close(code, reason)
      })
      socket.on('close', () => drop(conn))
      socket.on('error', () => drop(conn))
      requestSnapshot(conn)
    },

    get size() {
      return connections.size
    },

    close(code = CLOSE_CODES.serviceRestart.code, reason: string = CLOSE_CODES.serviceRestart.reason) {
      closed = true
      unsubscribe()
      clearInterval(keepalive)
      clearTimeout(retryTimer)
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      flushTimer = undefined
      for (const conn of connections) conn.socket.close(code, reason)
      connections.clear()
      waiting = []
    },
  }
}
