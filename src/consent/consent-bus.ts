/**
 * Tells every instance that a contact's consent changed, so each forgets what it remembered
 * about that contact. Memory and Redis implementations sit beside this file.
 */
export interface ConsentBus {
  /** Tells every instance, this one included (at once, before the promise settles). */
  publish(contactId: string): Promise<void>
  /** Listens for changes; `*` means anything may have changed (notices were lost); returns the unsubscribe function. */
  subscribe(listener: (contactId: string) => void): () => void
}
