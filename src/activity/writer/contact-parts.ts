import type { ActivityStore } from '../activity-store.js'
import type { ActivityEvent } from '../event-log/event-log.js'

/** Below this many events per part a batch is written as one transaction. */
const MIN_EVENTS_PER_PART = 200

/** The events in `count` parts by contact (an FNV-1a hash of its id), each part in stream order. */
function splitByContact(events: readonly ActivityEvent[], count: number): (readonly ActivityEvent[])[] {
  if (count <= 1) return [events]
  const parts: ActivityEvent[][] = Array.from({ length: count }, () => [])
  for (const event of events) {
    let hash = 0x811c9dc5
    for (let i = 0; i < event.contactId.length; i += 1) hash = Math.imul(hash ^ event.contactId.charCodeAt(i), 0x01000193)
    ;(parts[(hash >>> 0) % count] as ActivityEvent[]).push(event)
  }
  return parts.filter((part) => part.length > 0)
}

/**
 * Writes a batch as up to `parallel` transactions at once, each with the events of its own
 * contacts (a contact's events stay in one transaction). `onLocked`: once every part holds its
 * contacts (see ActivityStore.write). Rejects with the first failure once every part settled,
 * so a retry never races a part still running.
 */
export async function writeInParts(store: ActivityStore, events: readonly ActivityEvent[], parallel: number, onLocked?: () => void): Promise<void> {
  const parts = splitByContact(events, events.length < MIN_EVENTS_PER_PART * 2 ? 1 : parallel)
  if (parts.length === 1) return store.write(events, onLocked)
  const locked = new Set<number>()
  const onPartLocked = (index: number) => (): void => {
    locked.add(index) // a part retried after a deadlock is locked again
    if (locked.size === parts.length) onLocked?.()
  }
  const results = await Promise.allSettled(parts.map((part, index) => store.write(part, onPartLocked(index))))
  const failed = results.find((result) => result.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}
