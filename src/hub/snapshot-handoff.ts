import type { PresenceChange } from '../presence/presence-engine.js'
import type { SnapshotParts } from '../presence/snapshot-parts.js'

/**
 * The hand-off from a snapshot to the live feed, for one dashboard socket: every change
 * reaches the socket exactly once, either in its snapshot or in a diff after it.
 *
 * The feed is in partitions (a contact's changes all in one), each with positions of its own
 * and in order within it; every rule below applies to each partition on its own, so the
 * socket's feed position is one position per partition.
 *
 * The protocol:
 *
 * 1. A socket asks for a snapshot (on connect, on `resync`, on a feed reset). From then on it
 *    holds the feed's changes instead of getting diffs.
 * 2. When the read of its snapshot begins, what it held is dropped: the snapshot holds it. It
 *    holds again from there on, so no change between the start of the read and the socket is
 *    missed. A read that fails keeps what it held, and the socket waits for the next read.
 * 3. The parts of a snapshot are read at their own feed positions (SnapshotParts). Once they
 *    are sent, the socket gets, as one catch-up diff, the held changes after the position of
 *    each change's own contact, and is live. Its feed position is the last held change's, or
 *    the snapshot's lowest if that is higher. A socket that asked for another snapshot while
 *    this one was read keeps holding, for the next one.
 * 4. Live, it gets each window of changes after its feed position, leaving out, while its
 *    snapshot matters, a contact's changes at or below that contact's position in the
 *    snapshot (the feed may deliver them after the snapshot went out). Once its feed
 *    position reaches the snapshot's highest, the snapshot no longer matters: the feed
 *    position alone tells what the socket has seen.
 *
 * Sockets that the snapshot no longer concerns and that have seen the same feed position need
 * the same changes of a window: `handOutWindow` serialises those once and shares the text.
 */

/** A change of the feed at its position in its partition (a FeedMessage of type `change` is one). */
export interface FeedChange {
  readonly partition: number
  readonly position: number
  readonly change: PresenceChange
  /** The engine's time of the change, ms, when the feed carries it. */
  readonly at?: number
}

export const contactOf = (change: PresenceChange): string => (change.kind === 'left' ? change.left.contactId : change.presence.contactId)

export class SnapshotHandoff {
  /** Per partition, the highest feed position reflected in what the socket was sent. */
  private seen: number[] = []
  /** `seen` as text (sockets with the same share a window's serialisation); undefined: not made yet. */
  private seenKey: string | undefined = undefined
  /** The changes held while the socket's snapshot is read or waits to be; undefined once live. */
  private held: FeedChange[] | undefined = undefined
  /** The socket waits for a snapshot read to begin. */
  private waitingForRead = false
  /** The snapshot last sent, while it matters (until the feed position reaches its highest). */
  private snapshot: SnapshotParts | undefined = undefined

  /** The socket gets diffs: no snapshot of it is asked for or being read. */
  get live(): boolean {
    return this.held === undefined
  }

  /** It waits for a snapshot read to begin (asked for, or its last read failed). */
  get waiting(): boolean {
    return this.waitingForRead
  }

  /** The feed position of what the socket was sent, in a partition. */
  feedPosition(partition: number): number {
    return this.seen[partition] ?? 0
  }

  /**
   * A snapshot is asked for: the socket holds changes from now on. False when it already
   * waits for a read to begin (that read serves this request too).
   */
  ask(): boolean {
    if (this.waitingForRead) return false
    this.held = []
    this.waitingForRead = true
    return true
  }

  /** The read of its snapshot begins: what it held so far is in the snapshot. */
  readBegins(): void {
    this.held = []
    this.waitingForRead = false
  }

  /**
   * The read failed before any of it reached the socket: it waits for the next one, still
   * holding. False when it already waits (it asked again during the read).
   */
  readFailed(): boolean {
    if (this.waitingForRead) return false
    this.waitingForRead = true
    return true
  }

  /** A change of the feed; held while the snapshot is read, ignored once live (windows bring it). */
  hold(change: FeedChange): void {
    this.held?.push(change)
  }

  /**
   * The whole snapshot went out: the held changes it does not hold, for one catch-up diff,
   * and the socket is live. Undefined when it asked for another snapshot meanwhile: it keeps
   * holding for that one.
   */
  readEnds(snapshot: SnapshotParts): FeedChange[] | undefined {
    if (this.waitingForRead) return undefined
    const held = this.held ?? []
    this.held = undefined
    // Every contact's position is at or above its partition's lowest: the changes after a contact's own position.
    const newer = held.filter((c) => c.position > snapshot.position(contactOf(c.change)))
    const seen = Array.from({ length: snapshot.partitions }, (_, partition) => snapshot.lowest(partition))
    for (const c of held) seen[c.partition] = Math.max(seen[c.partition] ?? 0, c.position)
    this.seen = seen
    this.seenKey = undefined
    this.snapshot = snapshot
    this.forgetSnapshot()
    return newer
  }

  /**
   * The feed positions, as text, that every socket needing the same changes of a window
   * shares, or undefined while its snapshot still matters (what it needs depends on that
   * snapshot).
   */
  get sharedPosition(): string | undefined {
    if (this.snapshot !== undefined) return undefined
    this.seenKey ??= this.seen.join(',')
    return this.seenKey
  }

  /** The changes of a window that the socket has not seen: after its position, and after its snapshot's for the contact. */
  unseen(changes: readonly FeedChange[]): FeedChange[] {
    const { snapshot, seen } = this
    return changes.filter((c) => c.position > (seen[c.partition] ?? 0) && (snapshot === undefined || c.position > snapshot.position(contactOf(c.change))))
  }

  /** The socket was sent the feed up to `positions[p]` in each partition p that has one. */
  passTo(positions: readonly (number | undefined)[]): void {
    positions.forEach((position, partition) => {
      if (position !== undefined && position > (this.seen[partition] ?? 0)) {
        this.seen[partition] = position
        this.seenKey = undefined
      }
    })
    this.forgetSnapshot()
  }

  private forgetSnapshot(): void {
    const { snapshot, seen } = this
    if (snapshot === undefined) return
    for (let partition = 0; partition < snapshot.partitions; partition += 1) if ((seen[partition] ?? 0) < snapshot.highest(partition)) return
    this.snapshot = undefined
  }
}

/**
 * Hands a window of changes (in feed order, not empty) to the live sockets: each gets the
 * changes it has not seen, through `serialise` (undefined: nothing to send) and `send`.
 * Sockets at the same shared feed position get the same text, serialised once. Every live
 * socket's feed position moves to the window's last.
 */
export function handOutWindow<S extends { readonly handoff: SnapshotHandoff }, T>(
  changes: readonly FeedChange[],
  sockets: Iterable<S>,
  serialise: (changes: readonly FeedChange[]) => T | undefined,
  send: (socket: S, message: T) => void,
): void {
  // Per partition, the window's last position (changes are in order within a partition).
  const last: (number | undefined)[] = []
  for (const c of changes) last[c.partition] = c.position
  const byPosition = new Map<string, T | undefined>()
  for (const socket of sockets) {
    const { handoff } = socket
    if (!handoff.live) continue
    const shared = handoff.sharedPosition
    let message: T | undefined
    if (shared === undefined) message = serialise(handoff.unseen(changes))
    else {
      if (!byPosition.has(shared)) byPosition.set(shared, serialise(handoff.unseen(changes)))
      message = byPosition.get(shared)
    }
    handoff.passTo(last)
    if (message !== undefined) send(socket, message)
  }
}
