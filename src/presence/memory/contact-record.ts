import type { Presence, PresenceTimings } from '../presence-engine.js'

export interface Tab {
  hidden: boolean
  /** ms at which the tab is gone unless it beats again. */
  expiresAt: number
}

/** One online contact in the memory engine: what it showed last, and its open tabs. */
export interface ContactRecord {
  clientId: string
  name: string
  company: string
  path: string
  title: string
  since: number
  tabs: Map<string, Tab>
}

type Timeouts = Pick<PresenceTimings, 'presenceTimeoutMs' | 'idleTimeoutMs'>

/** When a tab was last seen: its expiry minus the timeout of its kind. */
export function tabLastSeen(tab: Tab, timeouts: Timeouts): number {
  return tab.expiresAt - (tab.hidden ? timeouts.idleTimeoutMs : timeouts.presenceTimeoutMs)
}

export function contactPresence(contactId: string, record: ContactRecord, timeouts: Timeouts): Presence {
  let active = false
  let lastSeen = 0
  for (const tab of record.tabs.values()) {
    if (!tab.hidden) active = true
    lastSeen = Math.max(lastSeen, tabLastSeen(tab, timeouts))
  }
  return {
    contactId,
    clientId: record.clientId,
    name: record.name,
    company: record.company,
    path: record.path,
    title: record.title,
    state: active ? 'active' : 'idle',
    since: record.since,
    lastSeen,
    tabs: record.tabs.size,
  }
}

/**
 * What a dashboard sees of a contact (lastSeen aside): a change to it is published as
 * `updated` (dashboard_view in lua/records.lua for the Redis engine).
 */
export function dashboardView(p: Presence): string {
  return `${p.path}\n${p.title}\n${p.state}\n${p.tabs}\n${p.name}\n${p.company}`
}
