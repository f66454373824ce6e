import { and, asc, desc, eq, gte, inArray, isNull, lt, or, type Column, type SQL } from 'drizzle-orm'
import { AppError } from '../../errors/errors.js'
import type { LeaveReason } from '../../presence/presence-engine.js'
import * as mysqlTables from '../schema-mysql.js'
import { fromEventRow } from '../batch/contact-rows.js'
import type { ActivityPage, ActivityQuery, ActivityStore, ConsentDecision, ConsentRecord, ContactExport, SessionSpan, SessionView } from '../activity-store.js'
import type { StoreContext } from './store-context.js'

type SessionSelect = typeof mysqlTables.sessions.$inferSelect
type PageSelect = typeof mysqlTables.pageVisits.$inferSelect

function consentFromRow(row: typeof mysqlTables.consents.$inferSelect): ConsentRecord {
  return {
    contactId: row.contactId,
    clientId: row.clientId,
    decision: row.decision as ConsentDecision,
    version: row.version,
    locale: row.locale,
    at: row.at,
    ip: row.ip,
    userAgent: row.userAgent,
  }
}

function encodeCursor(startedAt: number, id: string): string {
  return Buffer.from(JSON.stringify([startedAt, id])).toString('base64url')
}

function decodeCursor(cursor: string): { startedAt: number; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
      return { startedAt: value[0] as number, id: value[1] }
    }
  } catch {
    // fall through
  }
  throw new AppError('invalid_request', 'cursor is not one this server gave out')
}

/** A session as the API shows it at `at`: an open session's running visible time counts up to then. */
function sessionView(session: SessionSelect, pages: PageSelect[], at: number): SessionView {
  const visibleS = (row: { visibleMs: number; visibleSince: number | null }): number =>
    Math.round((row.visibleMs + (row.visibleSince === null ? 0 : Math.max(0, at - row.visibleSince))) / 1000)
  return {
    id: session.id,
    contactId: session.contactId,
    clientId: session.clientId,
    startedAt: session.startedAt,
    endedAt: session.endedAt,
    durationS: visibleS(session),
    endReason: session.endReason as LeaveReason | null,
    pages: pages.map((page) => ({ path: page.path, title: page.title, startedAt: page.startedAt, durationS: visibleS(page) })),
  }
}

type StoreReads = Pick<ActivityStore, 'contactActivity' | 'clientActivity' | 'exportContact' | 'contactClients' | 'sessionSpans' | 'latestConsent' | 'onlineSamples'>

/** Ids per `IN (…)` list: well within every database's limit on bound parameters. */
const IN_LIST_CHUNK = 1000

/** The store's reads: sessions page by page, a contact's export, the consent in force, the online samples. */
export function storeReads({ tables, db, now }: StoreContext): StoreReads {
  const { sessions, pageVisits, events, consents, onlineSamples, contacts } = tables

  async function sessionsWhere(where: SQL | undefined, limit: number): Promise<SessionSelect[]> {
    return db.select().from(sessions).where(where).orderBy(desc(sessions.startedAt), desc(sessions.id)).limit(limit)
  }

  async function withPages(rows: SessionSelect[]): Promise<SessionView[]> {
    const ids = rows.map((row) => row.id)
    const pages = ids.length === 0 ? [] : await db.select().from(pageVisits).where(inArray(pageVisits.sessionId, ids)).orderBy(asc(pageVisits.startedAt), asc(pageVisits.id))
    const bySession = new Map<string, PageSelect[]>()
    for (const page of pages) {
      const list = bySession.get(page.sessionId) ?? []
      list.push(page)
      bySession.set(page.sessionId, list)
    }
    const at = now()
    return rows.map((row) => sessionView(row, bySession.get(row.id) ?? [], at))
  }

  async function activity(where: SQL, query: ActivityQuery): Promise<ActivityPage> {
    const conditions = [where, gte(sessions.startedAt, query.from), lt(sessions.startedAt, query.to)]
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor)
      conditions.push(or(lt(sessions.startedAt, cursor.startedAt), and(eq(sessions.startedAt, cursor.startedAt), lt(sessions.id, cursor.id))) as SQL)
    }
    const rows = await sessionsWhere(and(...conditions), query.limit + 1)
    const more = rows.length > query.limit
    const shown = more ? rows.slice(0, query.limit) : rows
    const last = shown[shown.length - 1]
    return { sessions: await withPages(shown), nextCursor: more && last !== undefined ? encodeCursor(last.startedAt, last.id) : null }
  }

  return {
    contactActivity(contactId, query, clients) {
      const where = eq(sessions.contactId, contactId)
      return activity(clients === undefined ? where : (and(where, inArray(sessions.clientId, [...clients])) as SQL), query)
    },

    clientActivity(clientId, query) {
      return activity(eq(sessions.clientId, clientId), query)
    },

    async exportContact(contactId, clients): Promise<ContactExport> {
      const of = (table: { contactId: Column; clientId: Column }): SQL => {
        const where = eq(table.contactId, contactId)
        return clients === undefined ? where : (and(where, inArray(table.clientId, [...clients])) as SQL)
      }
      const sessionViews = await withPages(await sessionsWhere(of(sessions), Number.MAX_SAFE_INTEGER))
      const contactEvents = (await db.select().from(events).where(of(events)).orderBy(asc(events.id))).map(fromEventRow)
      const contactConsents = await db.select().from(consents).where(of(consents)).orderBy(asc(consents.at), asc(consents.id))
      return { contactId, sessions: sessionViews, events: contactEvents.map(({ id: _id, ...rest }) => rest), consents: contactConsents.map(consentFromRow) }
    },

    async contactClients(contactId) {
      const found = await Promise.all([
        db.selectDistinct({ clientId: contacts.clientId }).from(contacts).where(eq(contacts.contactId, contactId)),
        db.selectDistinct({ clientId: sessions.clientId }).from(sessions).where(eq(sessions.contactId, contactId)),
        db.selectDistinct({ clientId: consents.clientId }).from(consents).where(eq(consents.contactId, contactId)),
      ])
      return [...new Set(found.flat().map((row) => row.clientId))]
    },

    async sessionSpans(clients, from, to) {
      const spans: SessionSpan[] = []
      for (let i = 0; i < clients.length; i += IN_LIST_CHUNK) {
        const chunk = clients.slice(i, i + IN_LIST_CHUNK)
        spans.push(...(await db.select({ startedAt: sessions.startedAt, endedAt: sessions.endedAt }).from(sessions)
          .where(and(inArray(sessions.clientId, chunk), lt(sessions.startedAt, to), or(isNull(sessions.endedAt), gte(sessions.endedAt, from))))))
      }
      return spans
    },

    async latestConsent(contactId) {
      const [row] = await db.select().from(consents).where(eq(consents.contactId, contactId)).orderBy(desc(consents.at), desc(consents.id)).limit(1)
      return row === undefined ? undefined : consentFromRow(row)
    },

    async onlineSamples(from, to) {
      return db.select().from(onlineSamples).where(and(gte(onlineSamples.t, from), lt(onlineSamples.t, to))).orderBy(asc(onlineSamples.t))
    },
  }
}
