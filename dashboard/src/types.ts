/** The dashboard WebSocket's messages, as the widget reads them: the server's own types, not a copy. */
import type { Left, Presence } from '../../src/presence/presence-engine.js'
import type { SessionView, ActivityPage as ServerActivityPage } from '../../src/activity/activity-store.js'

export type { Left, Presence }

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

export type ActivitySession = Omit<SessionView, 'endReason'> & { endReason: string | null }
export type ActivityPage = ActivitySession['pages'][number]
export type ActivityResponse = Omit<ServerActivityPage, 'sessions'> & { sessions: ActivitySession[] }

export interface StatsResponse {
  points: { t: number; online: number }[]
}

/** GET and PUT /admin/api/settings. */
export type SettingName = 'heartbeatIntervalS' | 'presenceTimeoutS' | 'idleTimeoutS' | 'diffIntervalMs' | 'retentionDays'
export type SettingsResponse = Record<SettingName, number> & {
  sources: Record<SettingName, 'environment' | 'saved'>
  updatedAt: number | null
}
