import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import type { FeedMessage, PresenceChange, PresenceEngine, Snapshot } from '../presence/presence-engine.js'
import { coalesce } from './coalesce.js'

export interface DiffHubOptions {
  engine: PresenceEngine
  /** ms over which changes are gathered into one diff. */
  diffIntervalMs: number
  /** Bytes a socket may have unsent beyond its last snapshot before it is closed with 1013. */
  sendBufferBytes?: number
  /** ms between WebSocket pings; a socket that did not answer the previous one is dropped. */
  keepaliveMs?: number
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
  /** Changes received while its snapshot is being read; undefined once live. */
  pending: Change[] | undefined
  /** Size of the last snapshot sent: the send-buffer bound allows for it. */
  snapshotBytes: number
  alive: boolean
}

const OPEN = 1

/** A message with a part this long goes as fragments (head, then the parts) instead of one copy. */
const FRAGMENT_ABOVE = 64 * 1024

const CLOSING_BRACE = Buffer.from('}')

export function createDiffHub(options: DiffHubOptions): DiffHub {
  const { engine, diffIntervalMs, sendBufferBytes = 4 * 1024 * 1024, keepaliveMs = 30_000, now, log } = options
  const connections = new Set<Connection>()
  let window: Change[] = []
  let flushTimer: NodeJS.Timeout | undefined
  let waiting: Connection[] = []
  let fetching = false
  let closed = false

  /**
   * `parts` are the message after its seq (`,"at":…}`), serialised and UTF-8 encoded once for
   * many sockets; each socket's own head is put before them.
   */
  function send(conn: Connection, type: 'snapshot' | 'diff', parts: readonly Buffer[]): void {
    if (conn.socket.readyState !== OPEN) return
    // A dashboard that cannot keep up is closed rather than allowed to grow our memory;
    // it reconnects and starts again from a snapshot.
    if (conn.socket.bufferedAmount > sendBufferBytes + conn.snapshotBytes) {
      const { code, reason } = CLOSE_CODES.tryAgainLater
      log.warn({ buffered: conn.socket.bufferedAmount }, 'dashboard socket too slow; closing')
      drop(conn)
      conn.socket.close(code, reason)
      return
    }
    conn.seq += 1
    // Text: the bytes are UTF-8 (ws would send a Buffer as binary).
    const head = Buffer.from(`{"type":"${type}","seq":${conn.seq}`)
    const last = parts.length - 1
    if (parts.every((part) => part.length < FRAGMENT_ABOVE)) {
      conn.socket.send(Buffer.concat([head, ...parts]), { binary: false })
      return
    }
    // A snapshot goes as fragments of one message: the head, then the shared parts as they
    // are, rather than a copy of megabytes per dashboard.
    conn.socket.send(head, { binary: false, fin: false })
    parts.forEach((part, i) => conn.socket.send(part, { binary: false, fin: i === last }))
  }

  function diffText(changes: Change[]): Buffer | undefined {
    const diff = coalesce(changes.map((c) => c.change))
    if (diff === undefined) return undefined
    return Buffer.from(`,"at":${now()},"joined":${JSON.stringify(diff.joined)},"updated":${JSON.stringify(diff.updated)},"left":${JSON.stringify(diff.left)}}`)
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
      if (!byPosition.has(conn.seenN)) byPosition.set(conn.seenN, diffText(changes.filter((c) => c.n > conn.seenN)))
      const text = byPosition.get(conn.seenN)
      conn.seenN = Math.max(conn.seenN, last)
      if (text !== undefined) send(conn, 'diff', [text])
    }
  }

  function onFeed(message: FeedMessage): void {
    if (message.type === 'reset') {
      for (const conn of connections) requestSnapshot(conn)
      return
    }
    const change: Change = { n: message.n, change: message.change }
    for (const conn of connections) conn.pending?.push(change)
    window.push(change)
    if (flushTimer === undefined) flushTimer = setTimeout(flush, diffIntervalMs)
  }

  /** `online`: the snapshot's presences as JSON, encoded once for every socket waiting for it. */
  function deliverSnapshot(conn: Connection, snapshot: Snapshot, online: Buffer): void {
    const pending = conn.pending ?? []
    conn.pending = undefined
    conn.snapshotBytes = online.length
    send(conn, 'snapshot', [Buffer.from(`,"at":${now()},"online":`), online, CLOSING_BRACE])
    const newer = pending.filter((c) => c.n > snapshot.n)
    conn.seenN = Math.max(snapshot.n, newer.length > 0 ? (newer[newer.length - 1] as Change).n : 0)
    const catchUp = diffText(newer)
    if (catchUp !== undefined) send(conn, 'diff', [catchUp])
  }

  async function fetchSnapshots(): Promise<void> {
    if (fetching || closed) return
    fetching = true
    // Only sockets that were waiting when the read began may share it: each one's pending
    // list started before the read, so nothing between the read and the socket is missed.
    const batch = waiting
    waiting = []
    try {
      const snapshot = await engine.snapshot()
      const online = Buffer.from(JSON.stringify(snapshot.online))
      for (const conn of batch) if (connections.has(conn)) deliverSnapshot(conn, snapshot, online)
    } catch (error) {
      log.error({ err: error }, 'snapshot failed; closing the waiting dashboards')
      for (const conn of batch) {
        drop(conn)
        conn.socket.close(CLOSE_CODES.tryAgainLater.code, 'snapshot unavailable')
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
      const conn: Connection = { socket, seq: 0, seenN: 0, pending: undefined, snapshotBytes: 0, alive: true }
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
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      flushTimer = undefined
      for (const conn of connections) conn.socket.close(code, reason)
      connections.clear()
      waiting = []
    },
  }
}
