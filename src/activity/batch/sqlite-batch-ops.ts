import { and, asc, eq, gte, inArray, lt, max } from 'drizzle-orm'
import type { PageVisitRow } from '../fold.js'
import { chunks, insertIgnore, upsert, type Db, type Tables } from '../store/store-context.js'
import type { BatchOps, Erasure } from './batch-ops.js'
import type { ContactRow, EventRow, LockedContact, StoredSession } from './contact-rows.js'

type Rows = Record<string, unknown>[]

/**
 * The writer's statements for SQLite, through drizzle. One connection: transactions run one at
 * a time, so the contact rows need no lock.
 */
export class SqliteBatchOps implements BatchOps {
  constructor(
    private readonly tx: Db,
    private readonly tables: Tables,
  ) {}

  async lockContacts(fresh: readonly { contactId: string; clientId: string }[]): Promise<{ contacts: LockedContact[]; erasures: Erasure[] }> {
    const { contacts: table, erasures: erasureTable } = this.tables
    await insertIgnore('sqlite', this.tx, table, fresh)
    const columns = { contactId: table.contactId, clientId: table.clientId, openSessionId: table.openSessionId, lastEventId: table.lastEventId }
    const contacts: LockedContact[] = []
    const erasures: Erasure[] = []
    for (const chunk of chunks(fresh)) {
      const ids = chunk.map((row) => row.contactId)
      contacts.push(...(await this.tx.select(columns).from(table).where(inArray(table.contactId, ids))))
      erasures.push(...(await this.tx.select().from(erasureTable).where(inArray(erasureTable.contactId, ids))))
    }
    return { contacts, erasures }
  }

  async deleteContact(contactId: string): Promise<void> {
    await this.tx.delete(this.tables.contacts).where(eq(this.tables.contacts.contactId, contactId))
  }

  insertEvents(rows: readonly EventRow[]): Promise<void> {
    return insertIgnore('sqlite', this.tx, this.tables.events, rows as unknown as Rows)
  }

  async sessionsById(ids: readonly string[]): Promise<StoredSession[]> {
    const { sessions } = this.tables
    const out: StoredSession[] = []
    for (const chunk of chunks(ids)) out.push(...(await this.tx.select().from(sessions).where(inArray(sessions.id, chunk))))
    return out
  }

  async pagesById(ids: readonly string[]): Promise<PageVisitRow[]> {
    const { pageVisits } = this.tables
    const out: PageVisitRow[] = []
    for (const chunk of chunks(ids)) out.push(...(await this.tx.select().from(pageVisits).where(inArray(pageVisits.id, chunk))))
    return out
  }

  async joinBefore(contactId: string, id: string): Promise<string | undefined> {
    const { events } = this.tables
    const [join] = await this.tx
      .select({ id: max(events.id) })
      .from(events)
      .where(and(eq(events.contactId, contactId), eq(events.type, 'join'), lt(events.id, id)))
    return join?.id ?? undefined
  }

  async deleteRowsFrom(contactId: string, from: string): Promise<void> {
    const { pageVisits, sessions } = this.tables
    await this.tx.delete(pageVisits).where(and(eq(pageVisits.contactId, contactId), gte(pageVisits.id, from)))
    await this.tx.delete(sessions).where(and(eq(sessions.contactId, contactId), gte(sessions.id, from)))
  }

  async eventsFrom(contactIds: readonly string[], from: string): Promise<EventRow[]> {
    const { events } = this.tables
    const out: EventRow[] = []
    for (const chunk of chunks(contactIds)) {
      out.push(
        ...(await this.tx
          .select()
          .from(events)
          .where(and(inArray(events.contactId, chunk), gte(events.id, from)))
          .orderBy(asc(events.contactId), asc(events.id))),
      )
    }
    return out
  }

  upsertSessions(rows: readonly StoredSession[]): Promise<void> {
    return upsert('sqlite', this.tx, this.tables.sessions, 'id', rows as unknown as Rows)
  }

  upsertPages(rows: readonly PageVisitRow[]): Promise<void> {
    return upsert('sqlite', this.tx, this.tables.pageVisits, 'id', rows as unknown as Rows)
  }

  upsertContacts(rows: readonly ContactRow[]): Promise<void> {
    return upsert('sqlite', this.tx, this.tables.contacts, 'contactId', rows as unknown as Rows)
  }
}
