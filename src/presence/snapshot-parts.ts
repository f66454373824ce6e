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
  parts: AsyncIterable<SnapshotPart>
  /** The number of feed partitions. */
  readonly partitions: number
  /** Once the parts are read: changes to this contact at or below this position of its partition's feed are in them. */
  position(contactId: string): number
  /** Once the parts are read: the lowest feed position of any contact of a partition, and the highest. */
  lowest(partition: number): number
  highest(partition: number): number
}

/**
 * One part of a snapshot: its contacts as presences, or as the JSON text a dashboard gets. An
 * engine that reads the part as bytes (the Redis engine's records) writes the text from them
 * without making the presences; the text is that of JSON.stringify of the presences.
 */
export interface SnapshotPart {
  /** The number of contacts in the part. */
  readonly size: number
  presences(): Presence[]
  /**
   * The JSON array (`[…]`, UTF-8) of the part's contacts whose client `sees` (every contact
   * without it), in the order of presences(); undefined when it holds none.
   */
  json(sees?: (clientId: string) => boolean): Uint8Array | undefined
}

/** A part's JSON text to UTF-8 bytes: TextEncoder's encode is two to three times as fast as Buffer.from for texts of megabytes. */
const encoder = new TextEncoder()

/** A part of presences already made: its text is JSON.stringify's. */
export function presencePart(online: Presence[]): SnapshotPart {
  return {
    size: online.length,
    presences: () => online,
    json(sees) {
      const visible = sees === undefined ? online : online.filter((presence) => sees(presence.clientId))
      return visible.length === 0 ? undefined : encoder.encode(JSON.stringify(visible))
    },
  }
}

/** The parts as one snapshot, at each partition's lowest position (every change at or below it is in it). */
export async function wholeSnapshot(reader: SnapshotParts): Promise<Snapshot> {
  const online: Presence[] = []
  for await (const part of reader.parts) for (const presence of part.presences()) online.push(presence)
  return { positions: Array.from({ length: reader.partitions }, (_, p) => reader.lowest(p)), online }
}
