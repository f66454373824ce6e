import type { Presence, Snapshot } from './presence-engine.js'

/**
 * A snapshot read part by part, so that a large one (megabytes at 100 000 online) is sent
 * while the rest is read. Each part holds the contacts of its own share of one partition of
 * the site, read at its own position in that partition's feed; the parts together hold every
 * contact once.
 *
 * Once the parts are read, `position` tells, per contact, up to which position of its
 * partition's feed its changes are in them: the changes after it, and only those, bring a
 * dashboard from the parts to the present. `lowest(p)` and `highest(p)` bound those positions
 * in partition p: every change of p at or below `lowest(p)` is in the parts, and none after
 * `highest(p)` is. The hub's side of this (what it holds while the parts are read, what it
 * sends after them, when the snapshot stops mattering) is in src/hub/snapshot-handoff.ts.
 */
export interface SnapshotParts {
  parts: AsyncIterable<Presence[]>
  /** The number of feed partitions. */
  readonly partitions: number
  /** Once the parts are read: changes to this contact at or below this position of its partition's feed are in them. */
  position(contactId: string): number
  /** Once the parts are read: the lowest feed position of any contact of a partition, and the highest. */
  lowest(partition: number): number
  highest(partition: number): number
}

/** A snapshot of one partition (the memory engine's) read at once, as one part. */
export function onePart(read: () => Promise<Snapshot>): SnapshotParts {
  let positions: number[] = []
  async function* parts(): AsyncGenerator<Presence[]> {
    const snapshot = await read()
    positions = snapshot.positions
    yield snapshot.online
  }
  const at = (partition: number): number => positions[partition] ?? 0
  return {
    parts: parts(),
    get partitions() {
      return positions.length
    },
    position: () => at(0),
    lowest: at,
    highest: at,
  }
}

/** The parts as one snapshot, at each partition's lowest position (every change at or below it is in it). */
export async function wholeSnapshot(reader: SnapshotParts): Promise<Snapshot> {
  const online: Presence[] = []
  for await (const part of reader.parts) for (const presence of part) online.push(presence)
  return { positions: Array.from({ length: reader.partitions }, (_, p) => reader.lowest(p)), online }
}
