import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'

/**
 * The durable activity log in the embedded SQLite file: the same tables and SQL column names
 * as schema-mysql.ts (see there for what each table holds). SQLite has no length limits and
 * compares text byte-wise (BINARY), which is what the MySQL tables' utf8mb4_bin collation
 * matches; `integer` holds 64-bit values, read back as JS numbers.
 */

export const events = sqliteTable(
  'cat_events',
  {
    id: text('id').primaryKey(),
    contactId: text('contact_id').notNull(),
    clientId: text('client_id').notNull(),
    sid: text('sid').notNull(),
    type: text('type').notNull(),
    path: text('path').notNull(),
    title: text('title').notNull(),
    at: integer('at').notNull(),
    fromAt: integer('from_at'),
    name: text('name'),
    company: text('company'),
    reason: text('reason'),
  },
  (table) => [index('cat_events_contact_idx').on(table.contactId, table.id), index('cat_events_at_idx').on(table.at)],
)

export const sessions = sqliteTable(
  'cat_sessions',
  {
    id: text('id').primaryKey(),
    contactId: text('contact_id').notNull(),
    clientId: text('client_id').notNull(),
    name: text('name').notNull().default(''),
    company: text('company').notNull().default(''),
    startedAt: integer('started_at').notNull(),
    endedAt: integer('ended_at'),
    visibleMs: integer('visible_ms').notNull().default(0),
    visibleSince: integer('visible_since'),
    endReason: text('end_reason'),
    pagesCount: integer('pages_count').notNull().default(0),
    lastEventAt: integer('last_event_at').notNull(),
    /** See schema-mysql.ts. */
    lastEventId: text('last_event_id'),
    foldState: text('fold_state'),
  },
  (table) => [
    index('cat_sessions_contact_idx').on(table.contactId, table.startedAt),
    index('cat_sessions_client_idx').on(table.clientId, table.startedAt),
    index('cat_sessions_started_idx').on(table.startedAt),
  ],
)

export const pageVisits = sqliteTable(
  'cat_page_visits',
  {
    id: text('id').primaryKey(),
    sessionId: text('session_id').notNull(),
    contactId: text('contact_id').notNull(),
    sid: text('sid').notNull(),
    path: text('path').notNull(),
    title: text('title').notNull(),
    startedAt: integer('started_at').notNull(),
    endedAt: integer('ended_at'),
    visibleMs: integer('visible_ms').notNull().default(0),
    visibleSince: integer('visible_since'),
  },
  (table) => [index('cat_page_visits_session_idx').on(table.sessionId, table.startedAt), index('cat_page_visits_contact_idx').on(table.contactId)],
)

export const onlineSamples = sqliteTable('cat_online_samples', {
  t: integer('t').primaryKey(),
  online: integer('online').notNull(),
})

export const erasures = sqliteTable('cat_erasures', {
  contactId: text('contact_id').primaryKey(),
  erasedAt: integer('erased_at').notNull(),
})

export const contacts = sqliteTable('cat_contacts', {
  contactId: text('contact_id').primaryKey(),
  clientId: text('client_id').notNull(),
  openSessionId: text('open_session_id'),
  lastEventId: text('last_event_id'),
})

export const consents = sqliteTable(
  'cat_consents',
  {
    id: text('id').primaryKey(),
    contactId: text('contact_id').notNull(),
    clientId: text('client_id').notNull(),
    decision: text('decision').notNull(),
    version: text('version').notNull(),
    locale: text('locale').notNull(),
    at: integer('at').notNull(),
    ip: text('ip').notNull(),
    userAgent: text('user_agent').notNull(),
  },
  (table) => [index('cat_consents_contact_idx').on(table.contactId, table.at)],
)

/** See schema-mysql.ts. */
export const installState = sqliteTable('cat_install_state', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  updatedAt: integer('updated_at').notNull(),
})

export const schema = { events, sessions, pageVisits, onlineSamples, erasures, contacts, consents, installState }
