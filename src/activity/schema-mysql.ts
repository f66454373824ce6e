import { bigint, index, int, mediumtext, mysqlTable, text, varchar } from 'drizzle-orm/mysql-core'

/**
 * The durable activity log in MySQL 5.7+ / MariaDB 10.3+. schema-sqlite.ts declares the same
 * tables with the same SQL names, so the writer and the queries are written once per dialect
 * against identical columns. Times are ms since the epoch (bigint, read as JS numbers: every
 * value fits in 2^53). Ids are sortable strings compared byte-wise.
 *
 * The initial migration (drizzle/mysql/0000_activity_log.sql) creates every table with
 * `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`, added by hand after
 * `drizzle-kit generate` (drizzle has no table options): the server's default charset may be
 * latin1 (MySQL 5.7), and a case-insensitive collation would make `abc` and `ABC` one id,
 * which they are not in SQLite, in Redis or in JS. Tables added by later migrations need the
 * same suffix.
 *
 * The 2048-character `path` (8 KiB in utf8mb4) is in no index: InnoDB keys stop at 3072 bytes.
 */

/** The raw activity events, one row per event id (inserts are idempotent on it). */
export const events = mysqlTable(
  'cat_events',
  {
    id: varchar('id', { length: 32 }).primaryKey(),
    contactId: varchar('contact_id', { length: 128 }).notNull(),
    clientId: varchar('client_id', { length: 128 }).notNull(),
    sid: varchar('sid', { length: 64 }).notNull(),
    type: varchar('type', { length: 8 }).notNull(),
    path: varchar('path', { length: 2048 }).notNull(),
    title: varchar('title', { length: 512 }).notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    /** Gap events: where the unobserved stretch began. */
    fromAt: bigint('from_at', { mode: 'number' }),
    name: varchar('name', { length: 200 }),
    company: varchar('company', { length: 200 }),
    reason: varchar('reason', { length: 16 }),
  },
  (table) => [index('cat_events_contact_idx').on(table.contactId, table.id), index('cat_events_at_idx').on(table.at)],
)

/** One row per session, keyed by the id of the event that started it. */
export const sessions = mysqlTable(
  'cat_sessions',
  {
    id: varchar('id', { length: 32 }).primaryKey(),
    contactId: varchar('contact_id', { length: 128 }).notNull(),
    clientId: varchar('client_id', { length: 128 }).notNull(),
    name: varchar('name', { length: 200 }).notNull().default(''),
    company: varchar('company', { length: 200 }).notNull().default(''),
    startedAt: bigint('started_at', { mode: 'number' }).notNull(),
    endedAt: bigint('ended_at', { mode: 'number' }),
    visibleMs: bigint('visible_ms', { mode: 'number' }).notNull().default(0),
    visibleSince: bigint('visible_since', { mode: 'number' }),
    endReason: varchar('end_reason', { length: 16 }),
    pagesCount: int('pages_count').notNull().default(0),
    lastEventAt: bigint('last_event_at', { mode: 'number' }).notNull(),
    /** Open session: the newest event id the writer folded (the contact row's may be older). */
    lastEventId: varchar('last_event_id', { length: 32 }),
    /** Open session: where the writer's fold stopped, its tabs (batch/contact-rows.ts encodeFoldState); null once it ended. */
    foldState: mediumtext('fold_state'),
  },
  (table) => [
    index('cat_sessions_contact_idx').on(table.contactId, table.startedAt),
    index('cat_sessions_client_idx').on(table.clientId, table.startedAt),
    index('cat_sessions_started_idx').on(table.startedAt),
  ],
)

/** One row per page view, keyed by the id of the nav (or join) event that opened it. */
export const pageVisits = mysqlTable(
  'cat_page_visits',
  {
    id: varchar('id', { length: 32 }).primaryKey(),
    sessionId: varchar('session_id', { length: 32 }).notNull(),
    contactId: varchar('contact_id', { length: 128 }).notNull(),
    sid: varchar('sid', { length: 64 }).notNull(),
    path: varchar('path', { length: 2048 }).notNull(),
    title: varchar('title', { length: 512 }).notNull(),
    startedAt: bigint('started_at', { mode: 'number' }).notNull(),
    endedAt: bigint('ended_at', { mode: 'number' }),
    visibleMs: bigint('visible_ms', { mode: 'number' }).notNull().default(0),
    visibleSince: bigint('visible_since', { mode: 'number' }),
  },
  (table) => [index('cat_page_visits_session_idx').on(table.sessionId, table.startedAt), index('cat_page_visits_contact_idx').on(table.contactId)],
)

/** Contacts online, sampled once a minute; `t` is the minute's start in ms. */
export const onlineSamples = mysqlTable('cat_online_samples', {
  t: bigint('t', { mode: 'number' }).primaryKey(),
  online: int('online').notNull(),
})

/** Contacts whose activity was erased (GDPR), so late redeliveries are not stored again. */
export const erasures = mysqlTable('cat_erasures', {
  contactId: varchar('contact_id', { length: 128 }).primaryKey(),
  erasedAt: bigint('erased_at', { mode: 'number' }).notNull(),
})

/**
 * One row per contact seen; the writer locks it to order a contact's writes, and keeps there
 * the contact's open session and the newest event id it folded when the row last changed
 * (while a session is open, its row has the newer one).
 */
export const contacts = mysqlTable('cat_contacts', {
  contactId: varchar('contact_id', { length: 128 }).primaryKey(),
  clientId: varchar('client_id', { length: 128 }).notNull(),
  openSessionId: varchar('open_session_id', { length: 32 }),
  lastEventId: varchar('last_event_id', { length: 32 }),
})

/**
 * The consent ledger: every decision a contact made, with the version of the text it was
 * shown, its locale, the truncated address and the user agent. The newest row is in force.
 */
export const consents = mysqlTable(
  'cat_consents',
  {
    id: varchar('id', { length: 36 }).primaryKey(),
    contactId: varchar('contact_id', { length: 128 }).notNull(),
    clientId: varchar('client_id', { length: 128 }).notNull(),
    decision: varchar('decision', { length: 16 }).notNull(),
    version: varchar('version', { length: 64 }).notNull(),
    locale: varchar('locale', { length: 16 }).notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    ip: varchar('ip', { length: 64 }).notNull(),
    userAgent: varchar('user_agent', { length: 512 }).notNull(),
  },
  (table) => [index('cat_consents_contact_idx').on(table.contactId, table.at)],
)

/**
 * The install's own documents, shared by every instance and read at start: `settings` (the live
 * settings an admin saved, JSON) and `license` (the licence key and its last signed lease, JSON).
 */
export const installState = mysqlTable('cat_install_state', {
  name: varchar('name', { length: 64 }).primaryKey(),
  value: text('value').notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
})

export const schema = { events, sessions, pageVisits, onlineSamples, erasures, contacts, consents, installState }
