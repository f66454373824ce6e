import { and, inArray, isNotNull, isNull, lt } from 'drizzle-orm'
import { sortableIdAt, type ActivityStore } from '../activity-store.js'
import type { Db, StoreContext } from './store-context.js'

/**
 * The retention purge: at most `limit` rows of each table older than `before`, in one
 * transaction; returns how many. Sessions go once ended (with their page visits), contacts once
 * they have no open session and their newest event is older.
 */
export function storeRetention({ tables, transaction }: StoreContext): Pick<ActivityStore, 'purge'> {
  const { events, sessions, pageVisits, onlineSamples, erasures, contacts } = tables

  async function purgeSessions(tx: Db, before: number, limit: number): Promise<number> {
    const rows = await tx
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(isNotNull(sessions.endedAt), lt(sessions.endedAt, before)))
      .limit(limit)
    if (rows.length === 0) return 0
    const ids = rows.map((row) => row.id)
    await tx.delete(pageVisits).where(inArray(pageVisits.sessionId, ids))
    await tx.delete(sessions).where(inArray(sessions.id, ids))
    return rows.length
  }

  return {
    async purge(before, limit) {
      const beforeId = sortableIdAt(before)
      return transaction(async (tx) => {
        const oldEvents = await tx.select({ id: events.id }).from(events).where(lt(events.at, before)).limit(limit)
        if (oldEvents.length > 0) await tx.delete(events).where(inArray(events.id, oldEvents.map((row) => row.id)))
        const sessionsDeleted = await purgeSessions(tx, before, limit)
        const samples = await tx.select({ t: onlineSamples.t }).from(onlineSamples).where(lt(onlineSamples.t, before)).limit(limit)
        if (samples.length > 0) await tx.delete(onlineSamples).where(inArray(onlineSamples.t, samples.map((row) => row.t)))
        const oldErasures = await tx.select({ id: erasures.contactId }).from(erasures).where(lt(erasures.erasedAt, before)).limit(limit)
        if (oldErasures.length > 0) await tx.delete(erasures).where(inArray(erasures.contactId, oldErasures.map((row) => row.id)))
        const idle = await tx
          .select({ id: contacts.contactId })
          .from(contacts)
          .where(and(isNull(contacts.openSessionId), lt(contacts.lastEventId, beforeId)))
          .limit(limit)
        if (idle.length > 0) await tx.delete(contacts).where(inArray(contacts.contactId, idle.map((row) => row.id)))
        return oldEvents.length + sessionsDeleted + samples.length + oldErasures.length + idle.length
      })
    },
  }
}
