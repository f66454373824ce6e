import type { ConsentBus } from './consent-bus.js'

/** The consent bus of one process: a notice goes to this instance's listeners only. */
export function createMemoryConsentBus(): ConsentBus & { close(): void } {
  const listeners = new Set<(contactId: string) => void>()
  return {
    async publish(contactId) {
      for (const listener of listeners) listener(contactId)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      listeners.clear()
    },
  }
}
