import type { FastifyBaseLogger } from 'fastify'
import { CLOSE_CODES } from '../errors/errors.js'
import type { Left, Presence } from '../presence/presence-engine.js'
import { visibleOnly, type Visibility } from '../auth/visibility.js'
import { coalesce, type Diff } from './coalesce.js'
import { OPEN, type Connection } from './connection.js'
import type { FeedChange } from './snapshot-handoff.js'

/** A diff this long goes as fragments (head, then the shared text) rather than one copy per socket. */
const FRAGMENT_ABOVE = 64 * 1024

/** A leave as dashboards get it: the contract's fields, without the client it was filtered by. */
const leftOnWire = (left: Left): Omit<Left, 'clientId'> => ({ contactId: left.contactId, at: left.at, reason: left.reason })
const presenceClient = (presence: Presence): string => presence.clientId
const leftClient = (left: Left): string => left.clientId

/**
 * A run of changes folded into one diff (coalesce), once; its text after the seq
 * (`,"at":…,"joined":…,"updated":…,"left":…}`) is serialised and encoded once per visibility
 * (the clients a dashboard's token sees) and shared by every socket of that visibility.
 */
export class FoldedDiff {
  private readonly texts = new Map<string, Buffer | undefined>()

  constructor(
    private readonly diff: Diff,
    private readonly at: number,
  ) {}

  /** The text for sockets of `visibility`; undefined when none of the changes is theirs to see. */
  textFor(visibility: Visibility): Buffer | undefined {
    if (this.texts.has(visibility.key)) return this.texts.get(visibility.key)
    const { diff } = this
    const joined = visibleOnly(diff.joined, visibility, presenceClient)
    const updated = visibleOnly(diff.updated, visibility, presenceClient)
    const left = visibleOnly(diff.left, visibility, leftClient)
    const text = joined.length + updated.length + left.length === 0
      ? undefined
      : Buffer.from(`,"at":${this.at},"joined":${JSON.stringify(joined)},"updated":${JSON.stringify(updated)},"left":${JSON.stringify(left.map(leftOnWire))}}`)
    this.texts.set(visibility.key, text)
    return text
  }
}

/** The changes folded into one diff; undefined when they cancel out. */
export function foldDiff(changes: readonly FeedChange[], now: () => number): FoldedDiff | undefined {
  const diff = coalesce(changes.map((c) => c.change))
  return diff === undefined ? undefined : new FoldedDiff(diff, now())
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
   * A diff, the text of `folded` for the socket's visibility (nothing when there is none). A
   * long one goes as two fragments, the socket's head and then the shared text as it is,
   * rather than a copy per socket.
   */
  sendDiff(conn: Connection, folded: FoldedDiff): void {
    const text = folded.textFor(conn.visibility)
    if (text === undefined || !this.begin(conn)) return
    if (text.length < FRAGMENT_ABOVE) {
      conn.socket.send(Buffer.concat([this.head(conn, 'diff'), text]), { binary: false })
      return
    }
    conn.socket.send(this.head(conn, 'diff'), { binary: false, fin: false })
    conn.socket.send(text, { binary: false, fin: true })
  }
}
