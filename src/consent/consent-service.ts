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

/** The contacts remembered as having granted consent. */
export interface KnownGrants {
  has(contactId: string): boolean
  add(contactId: string): void
  delete(contactId: string): void
  clear(): void
}

/** KnownGrants in a set of at most `size` contacts, the oldest forgotten first. */
export function boundedGrants(size: number): KnownGrants {
  const granted = new Set<string>()
  return {
    has: (contactId) => granted.has(contactId),
    add(contactId) {
      if (granted.size >= size) granted.delete(granted.values().next().value as string)
      granted.add(contactId)
    },
    delete: (contactId) => granted.delete(contactId),
    clear: () => granted.clear(),
  }
}

export interface ConsentServiceOptions {
  store: ActivityStore
  engine: PresenceEngine
  bus: ConsentBus
  /** Where grants are remembered; by default a set of 100 000 contacts. */
  grants?: KnownGrants
}

export function createConsentService({ store, engine, bus, grants }: ConsentServiceOptions): ConsentService {
  const granted = grants ?? boundedGrants(100_000)
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
      if (yes && generation === before) granted.add(contactId)
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
