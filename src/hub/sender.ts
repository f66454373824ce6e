import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import { coalesce } from './coalesce.js'
import { OPEN, type Connection } from './connection.js'
import type { FeedChange } from './snapshot-handoff.js'

/** A diff this long goes as fragments (head, then the shared text) rather than one copy per socket. */
const FRAGMENT_ABOVE = 64 * 1024

/**
 * The text of a diff after its seq (`,"at":…,"joined":…,"updated":…,"left":…}`), serialised
 * and encoded once for every socket that gets it; undefined when the changes cancel out.
 */
export function diffText(changes: readonly FeedChange[], now: () => number): Buffer | undefined {
  const diff = coalesce(changes.map((c) => c.change))
  if (diff === undefined) return undefined
  return Buffer.from(`,"at":${now()},"joined":${JSON.stringify(diff.joined)},"updated":${JSON.stringify(diff.updated)},"left":${JSON.stringify(diff.left)}}`)
}

/** Begins messages on dashboard sockets, and sends diffs. */
export class Sender {
  constructor(
    /** Bytes a socket may have unsent beyond its last snapshot before it is closed with 1013. */
    private readonly sendBufferBytes: number,
    private readonly drop: (conn: Connection) => void,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Starts a message: false (and nothing sent) when the socket is gone or too slow. A
   * dashboard that cannot keep up is closed rather than allowed to grow the server's memory;
   * it reconnects and starts again from a snapshot.
   */
  begin(conn: Connection): boolean {
    if (conn.socket.readyState !== OPEN) return false
    if (conn.socket.bufferedAmount > this.sendBufferBytes + conn.snapshotBytes) {
      const { code, reason } = CLOSE_CODES.tryAgainLater
      this.log.warn({ buffered: conn.socket.bufferedAmount }, 'dashboard socket too slow; closing')
      this.drop(conn)
      conn.socket.close(code, reason)
      return false
    }
    conn.seq += 1
    return true
  }

  /** The head of a message: its type and the socket's own seq. Text: the bytes are UTF-8 (ws would send a Buffer as binary). */
  head(conn: Connection, type: 'snapshot' | 'diff'): Buffer {
    return Buffer.from(`{"type":"${type}","seq":${conn.seq}`)
  }

  /**
   * A diff, `text` from diffText. A long one goes as two fragments, the socket's head and then
   * the shared text as it is, rather than a copy per socket.
   */
  sendDiff(conn: Connection, text: Buffer): void {
    if (!this.begin(conn)) return
    if (text.length < FRAGMENT_ABOVE) {
      conn.socket.send(Buffer.concat([this.head(conn, 'diff'), text]), { binary: false })
      return
    }
    conn.socket.send(this.head(conn, 'diff'), { binary: false, fin: false })
    conn.socket.send(text, { binary: false, fin: true })
  }
}
