import type { WebSocket } from 'ws'
import { SnapshotHandoff } from './snapshot-handoff.js'
import type { Visibility } from '../auth/visibility.js'

/** WebSocket.OPEN */
export const OPEN = 1

/** A dashboard socket the hub serves. */
export interface Connection {
  readonly socket: WebSocket
  /** The seq of the last message begun on it (each socket counts its own from 1). */
  seq: number
  /** Where it stands between its snapshot and the live feed. */
  readonly handoff: SnapshotHandoff
  /** Size of the last snapshot sent: the send-buffer bound allows for it. */
  snapshotBytes: number
  /** It answered the last keepalive ping. */
  alive: boolean
  /** The clients whose contacts its token sees: it gets theirs only. */
  readonly visibility: Visibility
}

export function newConnection(socket: WebSocket, visibility: Visibility): Connection {
  return { socket, seq: 0, handoff: new SnapshotHandoff(), snapshotBytes: 0, alive: true, visibility }
}
