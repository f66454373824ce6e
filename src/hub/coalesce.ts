import type { Left, Presence, PresenceChange } from '../presence/presence-engine.js'

export interface Diff {
  joined: Presence[]
  updated: Presence[]
  left: Left[]
}

interface Entry {
  left?: Left
  upsert?: { kind: 'joined' | 'updated'; presence: Presence }
}

/**
 * Folds an ordered run of changes into one diff, per contact:
 * joined+updated → joined (latest); updated+updated → updated (latest); joined+left → nothing;
 * updated+left → left; left+joined → left and joined. A dashboard applies `left`, then `joined`,
 * then `updated`, and treats joined/updated as upserts and left as delete-if-present.
 */
export function coalesce(changes: Iterable<PresenceChange>): Diff | undefined {
  const entries = new Map<string, Entry>()
  for (const change of changes) {
    const contactId = change.kind === 'left' ? change.left.contactId : change.presence.contactId
    const entry = entries.get(contactId)
    if (change.kind === 'left') {
      if (entry?.upsert?.kind === 'joined' && entry.left === undefined) entries.delete(contactId)
      else entries.set(contactId, { left: change.left })
    } else if (entry === undefined) {
      entries.set(contactId, { upsert: { kind: change.kind, presence: change.presence } })
    } else {
      entry.upsert = { kind: entry.upsert?.kind === 'joined' || change.kind === 'joined' || entry.left !== undefined ? 'joined' : 'updated', presence: change.presence }
    }
  }
  if (entries.size === 0) return undefined
  const diff: Diff = { joined: [], updated: [], left: [] }
  for (const entry of entries.values()) {
    if (entry.left !== undefined) diff.left.push(entry.left)
    if (entry.upsert !== undefined) diff[entry.upsert.kind].push(entry.upsert.presence)
  }
  return diff
}
