/**
 * The site's feed as this instance hears it: the scripts publish each call's changes on their
 * partition's feed channel, numbered by the partition's feed counter; a number skipped in any
 * partition or a subscription interrupted is a gap, told to listeners as a `reset`.
 */
import type { FeedMessage, LeaveReason, Presence, PresenceChange } from '../presence-engine.js'
import type { RedisConnections } from './connections.js'

/**
 * One change as the scripts publish it (lua/records.lua), in short keys to keep the messages
 * small: n = feed position, k = kind, p = the presence (joined, updated), l = the leave (left).
 */
interface WireChange {
  n: number
  /** The script call's time (its NOW), ms. */
  t?: number
  k: 'joined' | 'updated' | 'left'
  p?: Presence
  l?: { contactId: string; clientId?: string; at: number; reason: LeaveReason }
}

/** A presence decoded from Lua's cjson (keys in hash order), its keys put in the order of Presence. */
function inPresenceOrder(p: Presence): Presence {
  return {
    contactId: String(p.contactId),
    clientId: String(p.clientId),
    name: p.name,
    company: p.company,
    path: p.path,
    title: p.title,
    state: p.state,
    since: p.since,
    lastSeen: p.lastSeen,
    tabs: p.tabs,
  }
}

function changeOf(wire: WireChange): PresenceChange | undefined {
  if (wire.k === 'left' && wire.l !== undefined) {
    // A leave without its client (published by an instance of an older version) is seen only by dashboards that see every client.
    return { kind: 'left', left: { contactId: String(wire.l.contactId), clientId: wire.l.clientId === undefined ? '' : String(wire.l.clientId), at: wire.l.at, reason: wire.l.reason } }
  }
  if ((wire.k === 'joined' || wire.k === 'updated') && wire.p !== undefined) return { kind: wire.k, presence: inPresenceOrder(wire.p) }
  return undefined
}

export class RedisFeed {
  private readonly listeners = new Set<(message: FeedMessage) => void>()
  /** Per partition, the highest feed position known; undefined after a gap, until its next change. */
  private readonly lastPosition: (number | undefined)[]

  private constructor(private readonly connections: RedisConnections, partitions: number) {
    this.lastPosition = new Array<number | undefined>(partitions).fill(undefined)
  }

  /** Subscribes to the feed channel of each partition (`channels[p]`: partition p's), as shard channels. */
  static async open(connections: RedisConnections, channels: readonly string[]): Promise<RedisFeed> {
    const feed = new RedisFeed(connections, channels.length)
    connections.onResubscribed(() => {
      feed.lastPosition.fill(undefined)
      feed.emit({ type: 'reset' })
    })
    await Promise.all(channels.map((channel, partition) => connections.subscribe(channel, (text) => feed.received(partition, text), { sharded: true })))
    return feed
  }

  /** Subscribes; returns the unsubscribe function. */
  listen(listener: (message: FeedMessage) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** A snapshot read a partition up to `position`: a change after it that never arrives is a gap. */
  readUpTo(partition: number, position: number): void {
    if (!this.connections.interrupted) this.lastPosition[partition] = Math.max(this.lastPosition[partition] ?? 0, position)
  }

  close(): void {
    this.listeners.clear()
  }

  private emit(message: FeedMessage): void {
    for (const listener of this.listeners) listener(message)
  }

  private received(partition: number, text: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    // An array: the changes of one script call, in order.
    if (Array.isArray(parsed)) for (const wire of parsed) this.receivedChange(partition, wire as WireChange)
    else this.receivedChange(partition, parsed as WireChange)
  }

  private receivedChange(partition: number, wire: WireChange): void {
    if (wire === null || typeof wire !== 'object' || typeof wire.n !== 'number') return
    const position = wire.n
    const last = this.lastPosition[partition]
    // At or below the last: a change the last snapshot already holds, arriving late.
    // 1 below the last: the counter started over (the keys were deleted).
    if (last !== undefined && (position > last + 1 || (position === 1 && last > 1))) this.emit({ type: 'reset' })
    this.lastPosition[partition] = last === undefined || position > last || position === 1 ? position : last
    const change = changeOf(wire)
    if (change !== undefined) this.emit(typeof wire.t === 'number' ? { type: 'change', partition, position, change, at: wire.t } : { type: 'change', partition, position, change })
  }
}
