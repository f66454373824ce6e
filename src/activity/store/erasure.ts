import { eq } from 'drizzle-orm'
import type { ActivityStore } from '../activity-store.js'
import { upsert, type StoreContext } from './store-context.js'

/**
 * Deletes every row of the contact in one transaction, and records the erasure: the writer
 * drops the contact's events that were still on their way (see batch/write-batch.ts).
 */
export function storeErasure({ dialect, tables, transaction }: StoreContext): Pick<ActivityStore, 'eraseContact'> {
  const { erasures, pageVisits, sessions, events, contacts, consents } = tables
  return {
    async eraseContact(contactId, at) {
      await transaction(async (tx) => {
        await upsert(dialect, tx, erasures, 'contactId', [{ contactId, erasedAt: at }])
        await tx.delete(pageVisits).where(eq(pageVisits.contactId, contactId))
        await tx.delete(sessions).where(eq(sessions.contactId, contactId))
        await tx.delete(events).where(eq(events.contactId, contactId))
        await tx.delete(contacts).where(eq(contacts.contactId, contactId))
        await tx.delete(consents).where(eq(consents.contactId, contactId))
      })
    },
  }
}
