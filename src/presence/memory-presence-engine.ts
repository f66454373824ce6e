import type { FeedMessage, Heartbeat, HeartbeatResult, LeaveReason, PresenceChange, PresenceEngine, EngineEventsAndConsent, Presence, PresenceTimings, Snapshot } from './presence-engine.js'
import type { ActivityEvent, ActivityEventSource } from '../activity/event-log/event-log.js'
import { DEFAULT_MAX_TABS } from './presence-engine.js'
import { onePart } from './snapshot-parts.js'

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
  /** Events kept for the activity writer; the oldest are dropped past this (one process only). */
  maxQueuedEvents?: number
}

export interface MemoryPresenceEngine extends PresenceEngine, EngineEventsAndConsent {
  /** The in-process event queue that stands in for the Redis Stream. */
  readonly queue: ActivityEvent[]
}

/** The embedded default: presence in this process's memory. One instance only. */
export function createMemoryPresenceEngine(options: MemoryPresenceEngineOptions): MemoryPresenceEngine {
  const { now, presenceTimeoutMs, idleTimeoutMs, gapAfterMs, maxTabs = DEFAULT_MAX_TABS, maxQueuedEvents = 1_000_000 } = options
  const contacts = new Map<string, ContactRecord>()
  const listeners = new Set<(message: FeedMessage) => void>()
  const consentListeners = new Set<(contactId: string) => void>()
  const queue: ActivityEvent[] = []
  let position = 0
  let eventSeq = 0
  /** Wakes a reader waiting for events. */
  let wake: (() => void) | undefined
  let lastEventMs = 0
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

  function append(event: Omit<ActivityEvent, 'id'>): void {
    // Same shape as a stream id: ms-seq, ordered even when the clock stands still.
    if (event.at > lastEventMs) {
      lastEventMs = event.at
      eventSeq = 0
    } else {
      eventSeq += 1
    }
    queue.push({ id: `${lastEventMs}-${eventSeq}`, ...event })
    if (queue.length > maxQueuedEvents) queue.shift()
    wake?.()
  }

  function visibleKey(p: Presence): string {
    return `${p.path}\n${p.title}\n${p.state}\n${p.tabs}\n${p.name}\n${p.company}`
  }

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
    queue,

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
        const before = visibleKey(toPresence(contactId, record))
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
        if (visibleKey(presence) === before) return 'unchanged'
        publish({ kind: 'updated', presence })
        return 'updated'
      }

      // beat (unknown tab), nav, visible: the tab is there and visible.
      if (record !== undefined && tab === undefined && record.tabs.size >= maxTabs) return 'refused'
      const joined = record === undefined
      const before = record === undefined ? '' : visibleKey(toPresence(contactId, record))
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
      if (visibleKey(presence) === before) return 'unchanged'
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
          expired.push({ contactId, record, sid, tab, member: Buffer.from(`${contactId}|${sid}${tab.hidden ? '|h' : ''}`) })
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

    async tailEvents(count: number): Promise<ActivityEvent[]> {
      return queue.slice(-count)
    },

    async eventSource(): Promise<ActivityEventSource> {
      // One process, one consumer: the queue is what is not yet written; `handed` what of it
      // was read and is being written (reads go on meanwhile), forgotten by retry().
      let closed = false
      const handed = new Set<string>()
      return {
        async read(count, waitMs) {
          const fresh = (): ActivityEvent[] => {
            const events: ActivityEvent[] = []
            for (const event of queue) {
              if (events.length >= count) break
              if (!handed.has(event.id)) events.push(event)
            }
            return events
          }
          if (fresh().length === 0 && waitMs > 0 && !closed) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, waitMs)
              wake = () => {
                clearTimeout(timer)
                resolve()
              }
            })
            wake = undefined
          }
          const events = fresh()
          for (const event of events) handed.add(event.id)
          return events
        },
        retry() {
          handed.clear()
        },
        async claimStale() {
          return []
        },
        async ack(ids) {
          for (const id of ids) handed.delete(id)
          const done = new Set(ids)
          let head = 0
          while (head < queue.length && done.has((queue[head] as ActivityEvent).id)) head += 1
          if (head === done.size) {
            // The usual case: what was read was the head of the queue.
            queue.splice(0, head)
            return
          }
          let keep = 0
          for (const event of queue) if (!done.has(event.id)) queue[keep++] = event
          queue.length = keep
        },
        async close() {
          closed = true
          wake?.()
        },
      }
    },

    async discardEvents(contactId: string): Promise<number> {
      const before = queue.length
      let keep = 0
      for (const event of queue) if (event.contactId !== contactId) queue[keep++] = event
      queue.length = keep
      return before - keep
    },

    async count(): Promise<number> {
      return contacts.size
    },

    async notifyConsentChange(contactId: string): Promise<void> {
      for (const listener of consentListeners) listener(contactId)
    },

    onConsentChange(listener) {
      consentListeners.add(listener)
      return () => consentListeners.delete(listener)
    },

    async ping(): Promise<void> {},

    async close(): Promise<void> {
      listeners.clear()
      consentListeners.clear()
      wake?.()
    },
  }
}
