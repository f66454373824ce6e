import type { Presence, Snapshot } from './presence-engine.js'

/**
 * A snapshot read part by part, so that a large one (megabytes at 100 000 online) is sent
 * while the rest is read. Each part holds the contacts of its own share of the site, read at
 * its own feed position; the parts together hold every contact once.
 *
 * Once the parts are read, `position` tells, per contact, up to which feed position its
 * changes are in them: the changes after it, and only those, bring a dashboard from the parts
 * to the present. `lowest` and `highest` bound those positions: every change at or below
 * `lowest` is in the parts, and no change after `highest` is. The hub's side of this (what it
 * holds while the parts are read, what it sends after them, when the snapshot stops
 * mattering) is in src/hub/snapshot-handoff.ts.
 */
export interface SnapshotParts {
  parts: AsyncIterable<Presence[]>
  /** Once the parts are read: changes to this contact at or below this feed position are in them. */
  position(contactId: string): number
  /** Once the parts are read: the lowest feed position of any contact, and the highest. */
  readonly lowest: number
  readonly highest: number
}

/** A snapshot read at once, as one part. */
export function onePart(read: () => Promise<Snapshot>): SnapshotParts {
  let position = 0
  async function* parts(): AsyncGenerator<Presence[]> {
    const snapshot = await read()
    position = snapshot.position
    yield snapshot.online
  }
  return {
    parts: parts(),
    position: () => position,
    get lowest() {
      return position
    },
    get highest() {
      return position
    },
  }
}

/** The parts as one snapshot, at the lowest position (every change at or below it is in it). */
export async function wholeSnapshot(reader: SnapshotParts): Promise<Snapshot> {
  const online: Presence[] = []
  for await (const part of reader.parts) for (const presence of part) online.push(presence)
  return { position: reader.lowest, online }
}
