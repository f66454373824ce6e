import type { LeaveReason } from '../presence/presence-engine.js'
import type { ActivityEvent } from './event-log/event-log.js'

/** A session as the REST API shows it. */
export interface SessionView {
  id: string
  contactId: string
  clientId: string
  startedAt: number
  endedAt: number | null
  /** Visible seconds only. */
  durationS: number
  endReason: LeaveReason | null
  pages: { path: string; title: string; startedAt: number; durationS: number }[]
}

export interface ActivityQuery {
  /** Sessions started at or after this, ms. */
  from: number
  /** Sessions started before this, ms. */
  to: number
  limit: number
  /** From a previous page's nextCursor. */
  cursor: string | undefined
}

export interface ActivityPage {
  sessions: SessionView[]
  nextCursor: string | null
}

/** When a session began and ended (null while open), ms. */
export interface SessionSpan {
  startedAt: number
  endedAt: number | null
}

export interface OnlinePoint {
  /** The start of the minute or bucket, ms. */
  t: number
  online: number
}

export type ConsentDecision = 'granted' | 'denied' | 'withdrawn'

/** One entry of the consent ledger. */
export interface ConsentRecord {
  contactId: string
  clientId: string
  decision: ConsentDecision
  /** Hash of the consent text the contact was shown. */
  version: string
  locale: string
  at: number
  /** Truncated: IPv4 /24, IPv6 /48. */
  ip: string
  userAgent: string
}

export interface ContactExport {
  contactId: string
  sessions: SessionView[]
  events: Omit<ActivityEvent, 'id'>[]
  consents: ConsentRecord[]
}

/**
 * The durable activity log, whatever the database. sql-activity-store.ts implements it for
 * MySQL/MariaDB and SQLite alike.
 */
export interface ActivityStore {
  readonly dialect: 'mysql' | 'sqlite'
  /**
   * Writes a batch of events in one transaction. Idempotent on the event id: a batch written
   * twice (a redelivery) changes nothing the second time, whatever the order of batches.
   * `onLocked` is called once the batch holds its contacts: a write started after that waits,
   * for a contact both batches have, until this one has committed (so two writes in flight
   * still fold each contact's events in the order they were started).
   */
  write(events: readonly ActivityEvent[], onLocked?: () => void): Promise<void>
  /** A contact's sessions; with `clients`, only its sessions with those clients. */
  contactActivity(contactId: string, query: ActivityQuery, clients?: readonly string[]): Promise<ActivityPage>
  clientActivity(clientId: string, query: ActivityQuery): Promise<ActivityPage>
  /** Everything stored about a contact; with `clients`, only what it did as a contact of those clients. */
  exportContact(contactId: string, clients?: readonly string[]): Promise<ContactExport>
  /** Every client the contact is known as a contact of, in the activity log and the consent ledger. */
  contactClients(contactId: string): Promise<string[]>
  /** When the sessions of contacts of `clients` overlapping [from, to) began and ended (null: not yet), ms. */
  sessionSpans(clients: readonly string[], from: number, to: number): Promise<SessionSpan[]>
  /** Appends a decision to the consent ledger. */
  recordConsent(record: ConsentRecord): Promise<void>
  /** The decision in force: the newest. */
  latestConsent(contactId: string): Promise<ConsentRecord | undefined>
  /** Deletes every row of the contact and refuses its events that are still on the way. */
  eraseContact(contactId: string, at: number): Promise<void>
  /** Records the online count of the minute starting at `minute` (ms) once, whoever records it first. */
  sampleOnline(minute: number, online: number): Promise<void>
  onlineSamples(from: number, to: number): Promise<OnlinePoint[]>
  /** Deletes at most `limit` rows of each table older than `before`; returns how many. */
  purge(before: number, limit: number): Promise<number>
  /** The install's document `name` (cat_install_state: `settings`, `license`), or undefined when none was saved. */
  readInstallState(name: string): Promise<{ value: string; updatedAt: number } | undefined>
  /** Saves the document `name`, replacing what was there. */
  writeInstallState(name: string, value: string, updatedAt: number): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}

/**
 * Event ids (`ms-seq`, or `ms-seq-p` with the number of the partition's stream) do not sort
 * as text ("…-10" < "…-9"); stored ids are padded so that text order is event order in every
 * database (within a partition, where all of a contact's events are).
 */
export function sortableId(eventId: string): string {
  const [ms = '0', seq = '0', partition] = eventId.split('-')
  const id = `${ms.padStart(15, '0')}-${seq.padStart(8, '0')}`
  return partition === undefined ? id : `${id}-${partition.padStart(3, '0')}`
}

/** The smallest stored id at or after a time: for comparing ids with instants. */
export function sortableIdAt(ms: number): string {
  return sortableId(`${Math.max(0, Math.floor(ms))}-0`)
}
