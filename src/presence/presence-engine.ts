/**
 * What a presence engine does, whatever keeps the state. Two implementations sit beside this
 * file: memory/ (one process) and redis/ (shared by many instances).
 * test/presence/presence-engine.test.ts runs one suite against both.
 */
import type { SnapshotParts } from './snapshot-parts.js'

export const HEARTBEAT_EVENTS = ['beat', 'nav', 'visible', 'hidden', 'leave'] as const
export type HeartbeatEvent = (typeof HEARTBEAT_EVENTS)[number]

export type LeaveReason = 'timeout' | 'leave' | 'idle' | 'withdrawn'

export interface Heartbeat {
  contactId: string
  clientId: string
  name: string
  company: string
  /** The tab's random id. */
  sid: string
  path: string
  title: string
  event: HeartbeatEvent
}

/** One online contact as dashboards see it. */
export interface Presence {
  contactId: string
  clientId: string
  name: string
  company: string
  path: string
  title: string
  state: 'active' | 'idle'
  /** When this presence began, ms since the epoch. */
  since: number
  /** The last heartbeat of any tab, ms. */
  lastSeen: number
  tabs: number
}

export interface Left {
  contactId: string
  /** The contact's client: a dashboard that sees only some clients gets the leaves of theirs. Not sent to dashboards. */
  clientId: string
  at: number
  reason: LeaveReason
}

export type PresenceChange =
  | { kind: 'joined'; presence: Presence }
  | { kind: 'updated'; presence: Presence }
  | { kind: 'left'; left: Left }

/**
 * The feed every instance's hub listens to. The site's state is in partitions (one in memory;
 * a contact's changes are all in one), and `position` rises by one per change of its
 * partition; a `reset` says continuity was lost (a skipped position, a dropped pub/sub
 * connection), so listeners must re-read the state.
 */
export type FeedMessage =
  | {
      type: 'change'
      partition: number
      position: number
      change: PresenceChange
      /** The engine's time of the change, ms (its clock); absent when an instance of an older version made it. */
      at?: number
    }
  | { type: 'reset' }

export interface Snapshot {
  /** Per partition, the feed position the snapshot reflects: the partition's changes at or below it are in it. */
  positions: number[]
  online: Presence[]
}

/** refused: a new tab of a contact that already has the most tabs allowed; nothing was stored. */
export type HeartbeatResult = 'joined' | 'updated' | 'left' | 'unchanged' | 'ignored' | 'refused'

export interface PresenceTimings {
  /** ms without a heartbeat after which a visible tab is gone. */
  presenceTimeoutMs: number
  /** ms after which a hidden tab is gone. */
  idleTimeoutMs: number
  /** ms between two beats of a visible tab beyond which the time between them is a gap. */
  gapAfterMs: number
  /**
   * Most open tabs per contact (DEFAULT_MAX_TABS when omitted): a heartbeat of a new tab beyond
   * it is refused. Every script and sweep step works on one contact's tabs, so this bounds the
   * work one client can cause, whatever `sid`s it sends.
   */
  maxTabs?: number
}

/** The timings a live setting changes while the engine runs (PresenceEngine.setTimings). */
export type LiveTimings = Pick<PresenceTimings, 'presenceTimeoutMs' | 'idleTimeoutMs' | 'gapAfterMs'>

/** CAT_MAX_TABS_PER_CONTACT's default. */
export const DEFAULT_MAX_TABS = 32

/** Slack on top of the heartbeat interval before a late beat counts as a gap (timers, network). */
export const GAP_GRACE_MS = 10_000

export interface PresenceEngine {
  readonly kind: 'memory' | 'redis'
  /** Applies one heartbeat; resolves once the change is stored (the 204 waits for it). */
  heartbeat(beat: Heartbeat): Promise<HeartbeatResult>
  /**
   * Changes the timeouts and the gap (the live settings). A tab's expiry is fixed when it beats:
   * every beat from now on, of any tab, expires by the new timeouts, and a tab that does not beat
   * again expires when it was due. The last-seen time of a tab that beat before the change (and
   * the time of its leave, should it expire) is its expiry minus the new timeout: off by the
   * change until the tab beats again. Both engines keep only the expiry, so both do this alike.
   */
  setTimings(timings: LiveTimings): void
  /** Ends a contact's presence at once (withdrawn consent, erasure); false when not online. */
  end(contactId: string, reason: LeaveReason): Promise<boolean>
  /** Removes expired tabs and emits their leaves; each expiry is emitted by exactly one caller. */
  sweep(): Promise<number>
  snapshot(): Promise<Snapshot>
  /** The same, read and handed over part by part (the hub streams it to dashboards). */
  snapshotParts(): SnapshotParts
  /** Subscribes to the site's feed; returns the unsubscribe function. */
  onFeed(listener: (message: FeedMessage) => void): () => void
  /** How many contacts are online. */
  count(): Promise<number>
  /** Throws when the backing store does not answer. */
  ping(): Promise<void>
  close(): Promise<void>
}
