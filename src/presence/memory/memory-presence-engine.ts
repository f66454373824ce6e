import type { FeedMessage, Heartbeat, HeartbeatResult, LeaveReason, PresenceChange, PresenceEngine, Presence, PresenceTimings, Snapshot } from '../presence-engine.js'
import type { ActivityEvent } from '../../activity/event-log/event-log.js'
import { DEFAULT_MAX_TABS } from '../presence-engine.js'
import { onePart } from '../snapshot-parts.js'
import { tabMember } from '../redis/records.js'

interface Tab {
  hidden: boolean
  /** ms at which the tab is gone unless it beats again. */
  expiresAt: number
}

interface ContactRecord {
  clientId: string
  name: string
  company: string
  path: string
  title: string
  since: number
  tabs: Map<string, Tab>
}

export interface MemoryPresenceEngineOptions extends PresenceTimings {
  now: () => number
  /** Where the activity events of the changes go (the memory event log). */
  events: { append(event: Omit<ActivityEvent, 'id'>): void }
}

/** What a dashboard sees of a contact (lastSeen aside): a change to it is published as `updated`. */
function dashboardView(p: Presence): string {
  return `${p.path}\n${p.title}\n${p.state}\n${p.tabs}\n${p.name}\n${p.company}`
}

/** The embedded default: presence in this process's memory. One instance only. */
export function createMemoryPresenceEngine(options: MemoryPresenceEngineOptions): PresenceEngine {
  const { now, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs = DEFAULT_MAX_TABS, events } = options
  const contacts = new Map<string, ContactRecord>()
  const listeners = new Set<(message: FeedMessage) => void>()
  let position = 0
  /**
   * At or before every tab's expiry: a sweep before it has nothing to find and skips the scan of
   * every contact. Lowered wherever an expiry is set, made exact by each scan.
   */
  let earliestExpiry = Number.POSITIVE_INFINITY
  /** Every tab expiry is set through this: `ms`, with the bound lowered to it if need be. */
  const expiry = (ms: number): number => {
    if (ms < earliestExpiry) earliestExpiry = ms
    return ms
  }

  function lastSeenOf(record: ContactRecord): number {
    let lastSeen = 0
    for (const tab of record.tabs.values()) {
      lastSeen = Math.max(lastSeen, tab.expiresAt - (tab.hidden ? idleTimeoutMs : presenceTimeoutMs))
    }
    return lastSeen
  }

  function toPresence(contactId: string, record: ContactRecord): Presence {
    let active = false
    for (const tab of record.tabs.values()) if (!tab.hidden) active = true
    return {
      contactId,
      clientId: record.clientId,
      name: record.name,
      company: record.company,
      path: record.path,
      title: record.title,
      state: active ? 'active' : 'idle',
      since: record.since,
      lastSeen: lastSeenOf(record),
      tabs: record.tabs.size,
    }
  }

  function publish(change: PresenceChange): void {
    position += 1
    const message: FeedMessage = { type: 'change', position, change }
    for (const listener of listeners) listener(message)
  }

  const append = (event: Omit<ActivityEvent, 'id'>): void => events.append(event)

  function endContact(contactId: string, record: ContactRecord, sid: string, at: number, reason: LeaveReason): void {
    contacts.delete(contactId)
    append({ type: 'end', contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at, reason })
    publish({ kind: 'left', left: { contactId, at, reason } })
  }

  async function snapshot(): Promise<Snapshot> {
    const online: Presence[] = []
    for (const [contactId, record] of contacts) online.push(toPresence(contactId, record))
    return { position, online }
  }

  return {
    kind: 'memory',

    async heartbeat(beat: Heartbeat): Promise<HeartbeatResult> {
      const at = now()
      const { contactId, sid, event } = beat
      let record = contacts.get(contactId)
      const tab = record?.tabs.get(sid)

      if (event === 'beat' && record !== undefined && tab !== undefined && !tab.hidden) {
        // The fast path: the page is unchanged, only the expiry moves.
        const lastSeen = tab.expiresAt - presenceTimeoutMs
        tab.expiresAt = expiry(at + presenceTimeoutMs)
        if (at - lastSeen > gapAfterMs) {
          append({ type: 'gap', contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at, from: lastSeen })
        }
        return 'unchanged'
      }
      if (event === 'leave' || event === 'hidden') {
        if (record === undefined || tab === undefined) return 'ignored'
        const before = dashboardView(toPresence(contactId, record))
        const base = { contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at }
        if (event === 'leave') {
          record.tabs.delete(sid)
          append({ type: 'leave', ...base })
          if (record.tabs.size === 0) {
            endContact(contactId, record, sid, at, 'leave')
            return 'left'
          }
        } else {
          tab.hidden = true
          tab.expiresAt = expiry(at + idleTimeoutMs)
          append({ type: 'hidden', ...base })
        }
        const presence = toPresence(contactId, record)
        if (dashboardView(presence) === before) return 'unchanged'
        publish({ kind: 'updated', presence })
        return 'updated'
      }

      // beat (unknown tab), nav, visible: the tab is there and visible.
      if (record !== undefined && tab === undefined && record.tabs.size >= maxTabs) return 'refused'
      const joined = record === undefined
      const before = record === undefined ? '' : dashboardView(toPresence(contactId, record))
      if (record === undefined) {
        record = { clientId: beat.clientId, name: beat.name, company: beat.company, path: beat.path, title: beat.title, since: at, tabs: new Map() }
        contacts.set(contactId, record)
      }
      record.clientId = beat.clientId
      record.name = beat.name
      record.company = beat.company
      const newTab = tab === undefined
      if (joined || newTab || event !== 'beat') {
        record.path = beat.path
        record.title = beat.title
      }
      record.tabs.set(sid, { hidden: false, expiresAt: expiry(at + presenceTimeoutMs) })
      const base = { contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at }
      if (joined) append({ type: 'join', ...base, name: beat.name, company: beat.company })
      else if (newTab || event === 'nav') append({ type: 'nav', ...base })
      else append({ type: 'visible', ...base })

      const presence = toPresence(contactId, record)
      if (joined) {
        publish({ kind: 'joined', presence })
        return 'joined'
      }
      if (dashboardView(presence) === before) return 'unchanged'
      publish({ kind: 'updated', presence })
      return 'updated'
    },

    async end(contactId: string, reason: LeaveReason): Promise<boolean> {
      const record = contacts.get(contactId)
      if (record === undefined) return false
      endContact(contactId, record, '', now(), reason)
      return true
    },

    async sweep(): Promise<number> {
      const at = now()
      if (at < earliestExpiry) return 0
      // In the order the Redis sweeper claims them (ZRANGEBYSCORE: expiry, then member bytes),
      // so when a contact's tabs expire together the one seen last ends the session.
      const expired: { contactId: string; record: ContactRecord; sid: string; tab: Tab; member: Buffer }[] = []
      let earliestLeft = Number.POSITIVE_INFINITY
      for (const [contactId, record] of contacts) {
        for (const [sid, tab] of record.tabs) {
          if (tab.expiresAt > at) {
            if (tab.expiresAt < earliestLeft) earliestLeft = tab.expiresAt
            continue
          }
          expired.push({ contactId, record, sid, tab, member: Buffer.from(tabMember(contactId, sid, tab.hidden)) })
        }
      }
      earliestExpiry = earliestLeft
      expired.sort((a, b) => a.tab.expiresAt - b.tab.expiresAt || Buffer.compare(a.member, b.member))
      let removed = 0
      for (const { contactId, record, sid, tab } of expired) {
        removed += 1
        const lastSeen = tab.expiresAt - (tab.hidden ? idleTimeoutMs : presenceTimeoutMs)
        record.tabs.delete(sid)
        if (record.tabs.size === 0) {
          endContact(contactId, record, sid, lastSeen, tab.hidden ? 'idle' : 'timeout')
        } else {
          append({ type: 'leave', contactId, clientId: record.clientId, sid, path: record.path, title: record.title, at: lastSeen })
          publish({ kind: 'updated', presence: toPresence(contactId, record) })
        }
      }
      return removed
    },

    snapshot,

    snapshotParts() {
      return onePart(snapshot)
    },

    onFeed(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async count(): Promise<number> {
      return contacts.size
    },

    async ping(): Promise<void> {},

    async close(): Promise<void> {
      listeners.clear()
    },
  }
}
