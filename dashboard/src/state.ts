import type { DiffMessage, Presence } from './types'

/** What one message changed, in the order the view applies it: removals first, then upserts. */
export interface Changes {
  removed: string[]
  upserted: Presence[]
  /** Contacts that arrived with this message (highlighted briefly); none on the first snapshot. */
  joined: Set<string>
}

/** The online contacts, kept as the README says: a snapshot replaces, a diff patches. */
export class OnlineState {
  readonly byId = new Map<string, Presence>()
  private initial = true

  get size(): number {
    return this.byId.size
  }

  applySnapshot(online: readonly Presence[]): Changes {
    const next = new Map(online.map((p) => [p.contactId, p] as const))
    const removed = [...this.byId.keys()].filter((id) => !next.has(id))
    const joined = new Set<string>()
    if (!this.initial) for (const id of next.keys()) if (!this.byId.has(id)) joined.add(id)
    this.initial = false
    this.byId.clear()
    for (const [id, p] of next) this.byId.set(id, p)
    return { removed, upserted: [...next.values()], joined }
  }

  /** `left` first (delete if present), then `joined`, then `updated` (both upserts). */
  applyDiff(diff: DiffMessage): Changes {
    const removed: string[] = []
    for (const left of diff.left ?? []) {
      if (this.byId.delete(left.contactId)) removed.push(left.contactId)
    }
    const upserted = new Map<string, Presence>()
    const joined = new Set<string>()
    for (const p of diff.joined ?? []) {
      if (!this.byId.has(p.contactId)) joined.add(p.contactId)
      this.byId.set(p.contactId, p)
      upserted.set(p.contactId, p)
    }
    for (const p of diff.updated ?? []) {
      this.byId.set(p.contactId, p)
      upserted.set(p.contactId, p)
    }
    return { removed, upserted: [...upserted.values()], joined }
  }
}
