import type { ActivityStore, ConsentDecision, ConsentRecord } from '../activity/activity-store.js'
import type { PresenceEngine } from '../presence/presence-engine.js'
import type { ConsentBus } from './consent-bus.js'

export interface ConsentService {
  /**
   * Whether the contact's decision in force is `granted`. A granted contact is remembered, so
   * the heartbeat path pays a map lookup, not a database round trip; any change anywhere
   * (pub/sub) makes every instance forget it at once.
   */
  isGranted(contactId: string): Promise<boolean>
  /** true when the contact is remembered as granted: isGranted's answer without a wait. */
  knownGranted(contactId: string): boolean
  /** Records a decision; anything but `granted` ends the contact's presence at once. */
  record(record: ConsentRecord): Promise<void>
  latest(contactId: string): Promise<ConsentRecord | undefined>
  close(): void
}

export const CONSENT_DECISIONS: readonly ConsentDecision[] = ['granted', 'denied', 'withdrawn']

export function createConsentService({ store, engine, bus, cacheSize = 100_000 }: { store: ActivityStore; engine: PresenceEngine; bus: ConsentBus; cacheSize?: number }): ConsentService {
  const granted = new Set<string>()
  // Bumped on every change: a lookup that began before a change does not cache its answer.
  let generation = 0
  const unsubscribe = bus.subscribe((contactId) => {
    generation += 1
    if (contactId === '*') granted.clear()
    else granted.delete(contactId)
  })

  return {
    knownGranted(contactId) {
      return granted.has(contactId)
    },

    async isGranted(contactId) {
      if (granted.has(contactId)) return true
      const before = generation
      const latest = await store.latestConsent(contactId)
      const yes = latest?.decision === 'granted'
      if (yes && generation === before) {
        if (granted.size >= cacheSize) granted.delete(granted.values().next().value as string)
        granted.add(contactId)
      }
      return yes
    },

    async record(record) {
      await store.recordConsent(record)
      await bus.publish(record.contactId)
      if (record.decision === 'granted') granted.add(record.contactId)
      else await engine.end(record.contactId, 'withdrawn')
    },

    latest(contactId) {
      return store.latestConsent(contactId)
    },

    close() {
      unsubscribe()
    },
  }
}
