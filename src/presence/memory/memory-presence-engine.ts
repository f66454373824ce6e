/**
 * The embedded default: presence in this process's memory, one instance only. Each change
 * appends its activity event to the memory event log and is published to the feed at once.
 */
import { setImmediate as turn } from 'node:timers/promises'
import type { ActivityEvent } from '../../activity/event-log/event-log.js'
import type { FeedMessage, Heartbeat, HeartbeatResult, LeaveReason, LiveTimings, Presence, PresenceChange, PresenceEngine, PresenceTimings, Snapshot } from '../presence-engine.js'
import { DEFAULT_MAX_TABS } from '../presence-engine.js'
import { tabMember } from '../redis/records.js'
import { presencePart, type SnapshotPart, type SnapshotParts } from '../snapshot-parts.js'
import { dashboardView, contactPresence, tabLastSeen, type ContactRecord, type Tab } from './contact-record.js'

/** Contacts per part of a snapshot read at once: a few hundred kilobytes of JSON. */
const ONE_READ_PART_SIZE = 2000

/**
 * A snapshot of one partition (the memory engine's) read at once, at one position, handed over
 * in parts of ONE_READ_PART_SIZE with a turn of the event loop between them: written as one
 * part, a snapshot of 100 000 held the process for the whole of its JSON, every request and
 * heartbeat waiting behind it.
 */
function readAtOnce(read: () => Promise<Snapshot>): SnapshotParts {
  let positions: number[] = []
  async function* parts(): AsyncGenerator<SnapshotPart> {
    const snapshot = await read()
    positions = snapshot.positions
    const { online } = snapshot
    yield presencePart(online.slice(0, ONE_READ_PART_SIZE))
    for (let from = ONE_READ_PART_SIZE; from < online.length; from += ONE_READ_PART_SIZE) {
      await turn()
      yield presencePart(online.slice(from, from + ONE_READ_PART_SIZE))
    }
  }
  const at = (partition: number): number => positions[partition] ?? 0
  return {
    parts: parts(),
    get partitions() {
      return positions.length
    },
    position: () => at(0),
    lowest: at,
    highest: at,
  }
}

export interface MemoryPresenceEngineOptions extends PresenceTimings {
  now: () => number
  /** Where the activity events of the changes go (the memory event log). */
  events: { append(event: Omit<ActivityEvent, 'id'>): void }
}

interface Expired {
  contactId: string
  record: ContactRecord
  sid: string
  tab: Tab
  /** The tab's member in a Redis bucket, as bytes: the Redis sweeper's order. */
  member: Buffer
}

export function createMemoryPresenceEngine(options: MemoryPresenceEngineOptions): PresenceEngine {
  return new MemoryPresenceEngine(options)
}

class MemoryPresenceEngine implements PresenceEngine {
  readonly kind = 'memory'
  private readonly now: () => number
  private readonly events: MemoryPresenceEngineOptions['events']
  private timeouts: { presenceTimeoutMs: number; idleTimeoutMs: number }
  private gapAfterMs: number
  private readonly maxTabs: number
  private readonly contacts = new Map<string, ContactRecord>()
  private readonly listeners = new Set<(message: FeedMessage) => void>()
  private position = 0
  /**
   * At or before every tab's expiry: a sweep before it has nothing to find and skips the scan of
   * every contact. Lowered wherever an expiry is set (expiry()), made exact by each scan.
   */
  private earliestExpiry = Number.POSITIVE_INFINITY

  constructor(options: MemoryPresenceEngineOptions) {
    this.now = options.now
    this.events = options.events
    this.timeouts = { presenceTimeoutMs: options.presenceTimeoutMs, idleTimeoutMs: options.idleTimeoutMs }
    this.gapAfterMs = options.gapAfterMs
    this.maxTabs = options.maxTabs ?? DEFAULT_MAX_TABS
  }

  async heartbeat(beat: Heartbeat): Promise<HeartbeatResult> {
    const at = this.now()
    const record = this.contacts.get(beat.contactId)
    const tab = record?.tabs.get(beat.sid)
    if (beat.event === 'beat' && record !== undefined && tab !== undefined && !tab.hidden) {
      // The fast path: the page is unchanged, only the expiry moves.
      const lastSeen = tab.expiresAt - this.timeouts.presenceTimeoutMs
      tab.expiresAt = this.expiry(at + this.timeouts.presenceTimeoutMs)
      if (at - lastSeen > this.gapAfterMs) this.append('gap', beat.contactId, record, beat.sid, at, { from: lastSeen })
      return 'unchanged'
    }
    if (beat.event === 'leave' || beat.event === 'hidden') {
      if (record === undefined || tab === undefined) return 'ignored'
      return this.hideOrLeave(beat, record, tab, at)
    }
    // beat (unknown tab), nav, visible: the tab is there and visible.
    if (record !== undefined && tab === undefined && record.tabs.size >= this.maxTabs) return 'refused'
    return this.show(beat, record, tab, at)
  }

  setTimings({ presenceTimeoutMs, idleTimeoutMs, gapAfterMs }: LiveTimings): void {
    this.timeouts = { presenceTimeoutMs, idleTimeoutMs }
    this.gapAfterMs = gapAfterMs
  }

  async end(contactId: string, reason: LeaveReason): Promise<boolean> {
    const record = this.contacts.get(contactId)
    if (record === undefined) return false
    this.endContact(contactId, record, '', this.now(), reason)
    return true
  }

  async sweep(): Promise<number> {
    const at = this.now()
    if (at < this.earliestExpiry) return 0
    const expired = this.expiredTabs(at)
    for (const { contactId, record, sid, tab } of expired) {
      const lastSeen = tabLastSeen(tab, this.timeouts)
      record.tabs.delete(sid)
      if (record.tabs.size === 0) {
        this.endContact(contactId, record, sid, lastSeen, tab.hidden ? 'idle' : 'timeout')
      } else {
        this.append('leave', contactId, record, sid, lastSeen)
        this.publish({ kind: 'updated', presence: this.presenceOf(contactId, record) })
      }
    }
    return expired.length
  }

  async snapshot(): Promise<Snapshot> {
    const online: Presence[] = []
    for (const [contactId, record] of this.contacts) online.push(this.presenceOf(contactId, record))
    return { positions: [this.position], online }
  }

  snapshotParts(): SnapshotParts {
    return readAtOnce(() => this.snapshot())
  }

  onFeed(listener: (message: FeedMessage) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async count(): Promise<number> {
    return this.contacts.size
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear()
  }

  /** leave or hidden of a known tab. */
  private hideOrLeave(beat: Heartbeat, record: ContactRecord, tab: Tab, at: number): HeartbeatResult {
    const { contactId, sid } = beat
    const before = dashboardView(this.presenceOf(contactId, record))
    if (beat.event === 'leave') {
      record.tabs.delete(sid)
      this.append('leave', contactId, record, sid, at)
      if (record.tabs.size === 0) {
        this.endContact(contactId, record, sid, at, 'leave')
        return 'left'
      }
    } else {
      tab.hidden = true
      tab.expiresAt = this.expiry(at + this.timeouts.idleTimeoutMs)
      this.append('hidden', contactId, record, sid, at)
    }
    return this.updated(contactId, record, before)
  }

  /** The tab is there and visible: joins the contact, opens the tab, or shows its page. */
  private show(beat: Heartbeat, known: ContactRecord | undefined, tab: Tab | undefined, at: number): HeartbeatResult {
    const { contactId, sid, event } = beat
    const joined = known === undefined
    const before = known === undefined ? '' : dashboardView(this.presenceOf(contactId, known))
    const record = known ?? { clientId: beat.clientId, name: beat.name, company: beat.company, path: beat.path, title: beat.title, since: at, tabs: new Map() }
    if (joined) this.contacts.set(contactId, record)
    record.clientId = beat.clientId
    record.name = beat.name
    record.company = beat.company
    const newTab = tab === undefined
    if (joined || newTab || event !== 'beat') {
      record.path = beat.path
      record.title = beat.title
    }
    record.tabs.set(sid, { hidden: false, expiresAt: this.expiry(at + this.timeouts.presenceTimeoutMs) })
    if (joined) this.append('join', contactId, record, sid, at, { name: beat.name, company: beat.company })
    else this.append(newTab || event === 'nav' ? 'nav' : 'visible', contactId, record, sid, at)
    if (!joined) return this.updated(contactId, record, before)
    this.publish({ kind: 'joined', presence: this.presenceOf(contactId, record) })
    return 'joined'
  }

  /** Publishes `updated` when what a dashboard sees changed from `before`. */
  private updated(contactId: string, record: ContactRecord, before: string): HeartbeatResult {
    const presence = this.presenceOf(contactId, record)
    if (dashboardView(presence) === before) return 'unchanged'
    this.publish({ kind: 'updated', presence })
    return 'updated'
  }

  /**
   * The expired tabs, in the order the Redis sweeper claims them (ZRANGEBYSCORE: expiry, then
   * member bytes), so when a contact's tabs expire together the one seen last ends the session.
   */
  private expiredTabs(at: number): Expired[] {
    const expired: Expired[] = []
    let earliestLeft = Number.POSITIVE_INFINITY
    for (const [contactId, record] of this.contacts) {
      for (const [sid, tab] of record.tabs) {
        if (tab.expiresAt > at) {
          if (tab.expiresAt < earliestLeft) earliestLeft = tab.expiresAt
          continue
        }
        expired.push({ contactId, record, sid, tab, member: Buffer.from(tabMember(contactId, sid, tab.hidden)) })
      }
    }
    this.earliestExpiry = earliestLeft
    return expired.sort((a, b) => a.tab.expiresAt - b.tab.expiresAt || Buffer.compare(a.member, b.member))
  }

  private endContact(contactId: string, record: ContactRecord, sid: string, at: number, reason: LeaveReason): void {
    this.contacts.delete(contactId)
    this.append('end', contactId, record, sid, at, { reason, name: record.name, company: record.company })
    this.publish({ kind: 'left', left: { contactId, clientId: record.clientId, at, reason } })
  }

  /** Every tab expiry is set through this: `ms`, with the bound lowered to it if need be. */
  private expiry(ms: number): number {
    if (ms < this.earliestExpiry) this.earliestExpiry = ms
    return ms
  }

  private presenceOf(contactId: string, record: ContactRecord): Presence {
    return contactPresence(contactId, record, this.timeouts)
  }

  private append(type: ActivityEvent['type'], contactId: string, record: ContactRecord, sid: string, at: number, extra?: Partial<ActivityEvent>): void {
    const event: Omit<ActivityEvent, 'id'> = { type, contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at }
    if (extra !== undefined) Object.assign(event, extra)
    this.events.append(event)
  }

  private publish(change: PresenceChange): void {
    this.position += 1
    const message: FeedMessage = { type: 'change', partition: 0, position: this.position, change, at: this.now() }
    for (const listener of this.listeners) listener(message)
  }
}
