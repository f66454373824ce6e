import type { DiffMessage, Presence } from './types'

/**
 * One online contact as the view holds it: the presence, and its search key made on first use
 * (a snapshot of 100 000 is searched later, if at all: making every key up front would lengthen
 * the wait for the first rows by as many strings).
 */
export class Entry {
  private searchKey: string | undefined

  constructor(readonly p: Presence) {}

  /** Lower-cased name, company, page title and path, for the search. */
  get key(): string {
    return (this.searchKey ??= `${this.p.name || this.p.contactId}\n${this.p.company}\n${this.p.title}\n${this.p.path}`.toLowerCase())
  }
}

/**
 * Display order: newest presence first; ties (one millisecond) by name, then id, so the order
 * is total and stable. Plain string comparison: an Intl collator or lower-casing costs a
 * microsecond a call, which a sort of 100 000 entries multiplies into a second.
 */
export function compare(a: Entry, b: Entry): number {
  const x = a.p
  const y = b.p
  if (x.since !== y.since) return y.since - x.since
  if (x.name !== y.name) return x.name < y.name ? -1 : 1
  return x.contactId < y.contactId ? -1 : x.contactId > y.contactId ? 1 : 0
}

/** The first `k` of `online` in display order, in one pass (the first rows, before the rest is sorted). */
export function firstInOrder(online: readonly Presence[], k: number): Entry[] {
  const top: Entry[] = []
  for (const p of online) {
    const entry = new Entry(p)
    if (top.length === k && compare(entry, top[k - 1] as Entry) >= 0) continue
    insertSorted(top, entry)
    if (top.length > k) top.pop()
  }
  return top
}

/** Where `entry` is, or would go, in `list` (sorted by compare). */
export function position(list: readonly Entry[], entry: Entry): number {
  let low = 0
  let high = list.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (compare(list[mid] as Entry, entry) < 0) low = mid + 1
    else high = mid
  }
  return low
}

/** Removes `entry` (this very object) from the sorted `list`; false when it is not there. */
export function removeSorted(list: Entry[], entry: Entry): boolean {
  const at = position(list, entry)
  if (list[at] !== entry) return false
  list.splice(at, 1)
  return true
}

export function insertSorted(list: Entry[], entry: Entry): void {
  list.splice(position(list, entry), 0, entry)
}

/** A group's live count: the contacts of one client, or on one page. */
export interface Group {
  readonly key: string
  /** The client's company name or the page's path, as last seen. */
  label: string
  /** The page's title (page groups), as last seen. */
  detail: string
  count: number
}

export type GroupKind = 'company' | 'page'

export function groupKey(kind: GroupKind, p: Presence): string {
  return kind === 'company' ? p.clientId : p.path
}

/** What one message changed: each contact's entry before and after (null: absent). */
export interface Changes {
  /** A snapshot: everything may have changed, the view is rebuilt. */
  replaced: boolean
  changed: { before: Entry | null; after: Entry | null }[]
  /** Contacts that arrived with this message (highlighted briefly); none on the first snapshot. */
  joined: Set<string>
}

/**
 * The online contacts, kept as the README says: a snapshot replaces, a diff patches. Beside the
 * contacts by id it keeps them in display order and counts them by company and by page, each
 * patched per change, so a diff costs what it changes, not what is online.
 */
export class OnlineState {
  readonly byId = new Map<string, Entry>()
  /** Every entry in display order. */
  order: Entry[] = []
  private readonly counted: Record<GroupKind, Map<string, Group>> = { company: new Map(), page: new Map() }
  /** Counted since the last snapshot: the counts are made when first asked for, then patched. */
  private countedValid = false
  private initial = true

  /** The contacts counted by company and by page. */
  get groups(): Record<GroupKind, ReadonlyMap<string, Group>> {
    if (!this.countedValid) {
      this.counted.company.clear()
      this.counted.page.clear()
      this.countedValid = true
      for (const entry of this.order) this.count(entry, 1)
    }
    return this.counted
  }

  get size(): number {
    return this.byId.size
  }

  applySnapshot(online: readonly Presence[]): Changes {
    const joined = new Set<string>()
    const byId = this.byId
    if (!this.initial) for (const p of online) if (!byId.has(p.contactId)) joined.add(p.contactId)
    this.initial = false
    byId.clear()
    const order: Entry[] = []
    for (const p of online) {
      const entry = new Entry(p)
      // A contact twice in one snapshot (never sent so) is listed once, as its last copy.
      const twice = byId.get(p.contactId)
      byId.set(p.contactId, entry)
      if (twice) order[order.indexOf(twice)] = entry
      else order.push(entry)
    }
    this.order = order.sort(compare)
    this.countedValid = false
    return { replaced: true, changed: [], joined }
  }

  /** `left` first (delete if present), then `joined`, then `updated` (both upserts). */
  applyDiff(diff: DiffMessage): Changes {
    const changed: Changes['changed'] = []
    const joined = new Set<string>()
    for (const left of diff.left ?? []) {
      const before = this.byId.get(left.contactId)
      if (!before) continue
      this.byId.delete(left.contactId)
      removeSorted(this.order, before)
      this.count(before, -1)
      changed.push({ before, after: null })
    }
    for (const p of [...(diff.joined ?? []), ...(diff.updated ?? [])]) {
      const before = this.byId.get(p.contactId) ?? null
      if (!before) joined.add(p.contactId)
      const after = new Entry(p)
      this.byId.set(p.contactId, after)
      if (before) {
        this.count(before, -1)
        const at = position(this.order, before)
        // Same place in the order (a page change, a tab more): replaced where it stands.
        if (this.order[at] === before && compare(before, after) === 0) this.order[at] = after
        else {
          removeSorted(this.order, before)
          insertSorted(this.order, after)
        }
      } else insertSorted(this.order, after)
      this.count(after, 1)
      changed.push({ before, after })
    }
    return { replaced: false, changed, joined }
  }

  private count(entry: Entry, delta: 1 | -1): void {
    if (!this.countedValid) return
    const { p } = entry
    for (const kind of ['company', 'page'] as const) {
      const key = groupKey(kind, p)
      const groups = this.counted[kind]
      let group = groups.get(key)
      if (!group) {
        if (delta < 0) continue
        group = { key, label: '', detail: '', count: 0 }
        groups.set(key, group)
      }
      group.count += delta
      if (group.count <= 0) groups.delete(key)
      else if (delta > 0) {
        group.label = kind === 'company' ? p.company || p.clientId : p.path
        group.detail = kind === 'page' ? p.title : ''
      }
    }
  }
}
