import type { PresenceEngine } from '../presence/presence-engine.js'
import type { ConsentBus } from '../consent/consent-bus.js'
import type { ActivityEventLog } from './event-log/event-log.js'
import type { ActivityStore } from './activity-store.js'

/**
 * GDPR erasure: the contact's presence ends (dashboards see `left`, reason `withdrawn`), its
 * events not yet written leave the stream, and its rows leave the database. The store keeps
 * the contact id and the time as a tombstone, so an event still on its way is dropped.
 */
export async function eraseContact(deps: { store: ActivityStore; engine: PresenceEngine; eventLog: ActivityEventLog; consentBus: ConsentBus; now: () => number }, contactId: string): Promise<void> {
  await deps.engine.end(contactId, 'withdrawn')
  await deps.eventLog.discard(contactId)
  // After the presence ended, so the end event it appended is older than the tombstone.
  await deps.store.eraseContact(contactId, deps.now())
  // Its consent went with its rows: no instance may go on accepting its heartbeats.
  await deps.consentBus.publish(contactId)
}
