/** The wire format of CONTRACT §4, as the widget reads it. */
export interface Presence {
  contactId: string
  clientId: string
  name: string
  company: string
  path: string
  title: string
  state: 'active' | 'idle'
  since: number
  lastSeen: number
  tabs: number
}

export interface Left {
  contactId: string
  at: number
  reason: 'timeout' | 'leave' | 'idle' | 'withdrawn'
}

export interface SnapshotMessage {
  type: 'snapshot'
  seq: number
  at: number
  online: Presence[]
}

export interface DiffMessage {
  type: 'diff'
  seq: number
  at: number
  joined?: Presence[]
  updated?: Presence[]
  left?: Left[]
}

export interface ActivityPage {
  path: string
  title: string
  startedAt: number
  durationS: number
}

export interface ActivitySession {
  id: string
  contactId: string
  clientId: string
  startedAt: number
  endedAt: number | null
  durationS: number
  endReason: string | null
  pages: ActivityPage[]
}

export interface ActivityResponse {
  sessions: ActivitySession[]
  nextCursor: string | null
}

export interface StatsResponse {
  points: { t: number; online: number }[]
}
