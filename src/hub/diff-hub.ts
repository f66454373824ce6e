import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import type { FeedMessage, PresenceEngine } from '../presence/presence-engine.js'
import { newConnection, type Connection } from './connection.js'
import { startKeepalive } from './keepalive.js'
import { Sender, foldDiff, type FoldedDiff } from './sender.js'
import { EVERY_CLIENT, type Visibility } from '../auth/visibility.js'
import { handOutWindow, type FeedChange } from './snapshot-handoff.js'
import { SnapshotStream } from './snapshot-stream.js'

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
  /** Told, in seconds, how long each change of a window sent to dashboards took from the engine to its send. */
  observeDiffLatency?: (seconds: number) => void
}

export interface DiffHub {
  /**
   * Takes over an authenticated dashboard socket: snapshot first, then diffs, of the contacts
   * of the clients `visibility` sees (every client by default).
   */
  add(socket: WebSocket, visibility?: Visibility): void
  readonly size: number
  /** Changes the diff window (a live setting); the window open now keeps its length. */
  setDiffInterval(ms: number): void
  /** Closes every socket with `code` and stops listening to the feed. */
  close(code?: number, reason?: string): void
}

/** The type of a dashboard's message, or undefined when it is none (binary, not JSON, no type). */
function messageType(data: WebSocket.RawData, isBinary: boolean): unknown {
  if (isBinary) return undefined
  try {
    return (JSON.parse(data.toString()) as { type?: unknown }).type
  } catch {
    return undefined
  }
}

/**
 * Serves dashboard sockets: each gets a snapshot (SnapshotStream), then the feed's changes
 * gathered over `diffIntervalMs` into one diff per window (handOutWindow), sent by Sender.
 * What the hand-off from the snapshot to the diffs guarantees is in snapshot-handoff.ts.
 */
export function createDiffHub(options: DiffHubOptions): DiffHub {
  const { engine, sendBufferBytes = 4 * 1024 * 1024, keepaliveMs = 30_000, retryMinMs = 100, retryMaxMs = 5_000, now, log, observeDiffLatency } = options
  const connections = new Set<Connection>()
  const drop = (conn: Connection): void => {
    connections.delete(conn)
    snapshots.forget(conn)
  }
  const sender = new Sender(sendBufferBytes, drop, log)
  const snapshots = new SnapshotStream({ engine, sender, connections, drop, retryMinMs, retryMaxMs, now, log })
  // Folded once per shared feed position; each visibility's text made once from the fold.
  const serialise = (changes: readonly FeedChange[]): FoldedDiff | undefined => foldDiff(changes, now)
  const send = (conn: Connection, folded: FoldedDiff): void => sender.sendDiff(conn, folded)
  /** The changes of the current window, in feed order. */
  let window: FeedChange[] = []
  let flushTimer: NodeJS.Timeout | undefined
  let diffIntervalMs = options.diffIntervalMs

  function flush(): void {
    flushTimer = undefined
    if (window.length === 0) return
    const changes = window
    window = []
    handOutWindow(changes, connections, serialise, send)
    if (observeDiffLatency !== undefined && connections.size > 0) {
      const sentAt = now()
      for (const { at } of changes) if (at !== undefined) observeDiffLatency(Math.max(0, sentAt - at) / 1000)
    }
  }

  function onFeed(message: FeedMessage): void {
    if (message.type === 'reset') {
      for (const conn of connections) snapshots.request(conn)
      return
    }
    for (const conn of connections) conn.handoff.hold(message)
    window.push(message)
    if (flushTimer === undefined) flushTimer = setTimeout(flush, diffIntervalMs)
  }

  const unsubscribe = engine.onFeed(onFeed)
  const stopKeepalive = startKeepalive(connections, keepaliveMs, drop)

  return {
    add(socket, visibility = EVERY_CLIENT) {
      const conn = newConnection(socket, visibility)
      connections.add(conn)
      socket.on('pong', () => {
        conn.alive = true
      })
      socket.on('message', (data, isBinary) => {
        if (messageType(data, isBinary) === 'resync') {
          snapshots.request(conn)
          return
        }
        const { code, reason } = CLOSE_CODES.policyViolation
        drop(conn)
        socket.close(code, reason)
      })
      socket.on('close', () => drop(conn))
      socket.on('error', () => drop(conn))
      snapshots.request(conn)
    },

    get size() {
      return connections.size
    },

    setDiffInterval(ms) {
      diffIntervalMs = ms
    },

    close(code = CLOSE_CODES.serviceRestart.code, reason: string = CLOSE_CODES.serviceRestart.reason) {
      snapshots.close()
      unsubscribe()
      stopKeepalive()
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      flushTimer = undefined
      for (const conn of connections) conn.socket.close(code, reason)
      connections.clear()
    },
  }
}
