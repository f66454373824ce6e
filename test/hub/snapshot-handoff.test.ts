import t from 'tap'
import { SnapshotHandoff, handOutWindow, type FeedChange } from '../../src/hub/snapshot-handoff.js'
import type { Presence } from '../../src/presence/presence-engine.js'
import type { SnapshotParts } from '../../src/presence/snapshot-parts.js'

const presence = (contactId: string): Presence => ({
  contactId, clientId: 'client-1', name: contactId, company: 'Acme', path: '/', title: '', state: 'active', since: 1, lastSeen: 1, tabs: 1,
})

/** A change to `contactId` at position `position` of feed partition `partition`. */
const change = (position: number, contactId: string, partition = 0): FeedChange => ({ partition, position, change: { kind: 'updated', presence: presence(contactId) } })

/** Already read parts of one partition: each contact at its own position, `rest` for any other; lowest and highest as the positions are. */
function snapshotAt(positions: Record<string, number>, rest: number): SnapshotParts {
  const all = [rest, ...Object.values(positions)]
  return {
    parts: (async function* () {})(),
    partitions: 1,
    position: (contactId) => positions[contactId] ?? rest,
    lowest: () => Math.min(...all),
    highest: () => Math.max(...all),
  }
}

const label = (changes: readonly FeedChange[] | undefined): string[] | undefined =>
  changes?.map((c) => `${c.position} ${c.change.kind === 'left' ? c.change.left.contactId : c.change.presence.contactId}`)

/** A hand-off through one read, holding `during` while it is read. */
function readThrough(handoff: SnapshotHandoff, snapshot: SnapshotParts, during: FeedChange[]): FeedChange[] | undefined {
  handoff.readBegins()
  for (const c of during) handoff.hold(c)
  return handoff.readEnds(snapshot)
}

t.test('a new socket holds changes until its snapshot is read, and gets no window meanwhile', async (t) => {
  const handoff = new SnapshotHandoff()
  t.ok(handoff.live, 'live before any snapshot is asked for')
  t.ok(handoff.ask(), 'asked')
  t.notOk(handoff.live, 'not live while it waits')
  t.ok(handoff.waiting)
  const sent: number[] = []
  handOutWindow([change(1, 'a')], [{ handoff }], (changes) => changes.length, (_, count) => sent.push(count))
  t.same(sent, [], 'a window passes it by')
  t.equal(handoff.feedPosition(0), 0, 'and does not move its feed position')
})

t.test('a change held during the read: before, at and after its contact\'s position in the snapshot', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  // x is in the snapshot as of 5, everyone else as of 3.
  const catchUp = readThrough(handoff, snapshotAt({ x: 5 }, 3), [change(4, 'x'), change(5, 'x'), change(4, 'y'), change(6, 'x')])
  t.same(label(catchUp), ['4 y', '6 x'], 'x at 4 and 5 are in the snapshot; y at 4 and x at 6 are not')
  t.ok(handoff.live, 'live after the read')
  t.equal(handoff.feedPosition(0), 6, 'at the last held change')
})

t.test('changes held before the read begins are in the snapshot; those during it are not', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  handoff.hold(change(1, 'a'))
  handoff.hold(change(2, 'b'))
  handoff.readBegins()
  t.notOk(handoff.waiting, 'no longer waiting: its read runs')
  handoff.hold(change(3, 'a'))
  handoff.hold(change(4, 'c'))
  // Parts read at position 0 would not filter 1 and 2 out: only the start of the read drops them.
  t.same(label(handoff.readEnds(snapshotAt({}, 0))), ['3 a', '4 c'])
  t.equal(handoff.feedPosition(0), 4)
})

t.test('no change held: the feed position is the snapshot\'s lowest, and held changes below it do not lower it', async (t) => {
  const empty = new SnapshotHandoff()
  empty.ask()
  t.same(readThrough(empty, snapshotAt({ x: 9 }, 7), []), [], 'nothing to catch up')
  t.equal(empty.feedPosition(0), 7, 'the lowest')

  const late = new SnapshotHandoff()
  late.ask()
  t.same(readThrough(late, snapshotAt({ x: 9 }, 7), [change(6, 'y')]), [], 'a change below the lowest is in the snapshot')
  t.equal(late.feedPosition(0), 7, 'still the lowest')
})

t.test('live: a window brings the changes after the socket\'s position, and after each contact\'s snapshot position until the highest', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  readThrough(handoff, snapshotAt({ x: 8 }, 3), [])
  t.equal(handoff.sharedPosition, undefined, 'its snapshot matters: it shares no text')
  // The feed delivers x's changes 4..8 after the snapshot went out: they are in it.
  t.same(label(handoff.unseen([change(2, 'y'), change(4, 'x'), change(4, 'y'), change(8, 'x'), change(9, 'x')])), ['4 y', '9 x'])
  handoff.passTo([7])
  t.equal(handoff.sharedPosition, undefined, 'below the highest (8): still matters')
  t.same(label(handoff.unseen([change(8, 'x'), change(8, 'y')])), ['8 y'])
  handoff.passTo([8])
  t.equal(handoff.sharedPosition, '8', 'at the highest the snapshot is forgotten')
  t.same(label(handoff.unseen([change(8, 'y'), change(9, 'x')])), ['9 x'], 'the feed position alone decides')
  handoff.passTo([5])
  t.equal(handoff.feedPosition(0), 8, 'the feed position never goes back')
})

t.test('a snapshot whose highest the held changes already reach is forgotten at once', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  readThrough(handoff, snapshotAt({ x: 5 }, 3), [change(6, 'y')])
  t.equal(handoff.sharedPosition, '6', 'shares texts from the start')
})

t.test('a reset during a read: the read\'s end leaves the socket holding, and the next read hands it over', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  handoff.readBegins()
  handoff.hold(change(4, 'a'))
  t.ok(handoff.ask(), 'the reset asks again: it joins the next read')
  handoff.hold(change(5, 'b'))
  t.equal(handoff.readEnds(snapshotAt({}, 3)), undefined, 'no catch-up from the old snapshot')
  t.notOk(handoff.live, 'still holding')
  t.equal(handoff.feedPosition(0), 0, 'its position is untouched')
  const sent: number[] = []
  handOutWindow([change(4, 'a'), change(5, 'b')], [{ handoff }], (changes) => changes.length, (_, count) => sent.push(count))
  t.same(sent, [], 'windows pass it by')
  // The next read, from after the reset: what it held before is in it.
  handoff.readBegins()
  handoff.hold(change(7, 'c'))
  t.same(label(handoff.readEnds(snapshotAt({}, 6))), ['7 c'])
  t.ok(handoff.live)
})

t.test('asking again while waiting for a read: one read serves both', async (t) => {
  const handoff = new SnapshotHandoff()
  t.ok(handoff.ask())
  handoff.hold(change(1, 'a'))
  t.notOk(handoff.ask(), 'already waiting: nothing to queue')
  t.ok(handoff.waiting)
  t.same(label(readThrough(handoff, snapshotAt({}, 1), [change(2, 'b')])), ['2 b'])
  t.ok(handoff.live)
})

t.test('a read that fails: the socket waits for the next, still holding what came since the failed one began', async (t) => {
  const handoff = new SnapshotHandoff()
  handoff.ask()
  handoff.readBegins()
  handoff.hold(change(4, 'a'))
  t.ok(handoff.readFailed(), 'back in the queue')
  t.ok(handoff.waiting)
  t.notOk(handoff.ask(), 'a request while it waits again is served by the next read')
  handoff.hold(change(5, 'b'))
  // The next read begins after both: they are in it.
  t.same(label(readThrough(handoff, snapshotAt({}, 5), [change(6, 'c')])), ['6 c'])

  const askedDuring = new SnapshotHandoff()
  askedDuring.ask()
  askedDuring.readBegins()
  askedDuring.ask()
  t.notOk(askedDuring.readFailed(), 'asked again during the read: already queued')
  t.ok(askedDuring.waiting)
})

t.test('a window is serialised once per shared feed position; a socket its snapshot still concerns gets its own', async (t) => {
  const live = (position: number): SnapshotHandoff => {
    const handoff = new SnapshotHandoff()
    handoff.ask()
    readThrough(handoff, snapshotAt({}, position), [])
    return handoff
  }
  const sockets = [
    { name: 'p3 one', handoff: live(3) },
    { name: 'p3 two', handoff: live(3) },
    { name: 'p4', handoff: live(4) },
    { name: 'snapshot', handoff: (() => {
      const handoff = new SnapshotHandoff()
      handoff.ask()
      readThrough(handoff, snapshotAt({ x: 6 }, 3), [])
      return handoff
    })() },
    { name: 'reading', handoff: (() => {
      const handoff = new SnapshotHandoff()
      handoff.ask()
      return handoff
    })() },
    { name: 'p3 three', handoff: live(3) },
    { name: 'p9', handoff: live(9) },
  ]
  const serialised: string[][] = []
  const sent = new Map<string, { text: string[] }>()
  handOutWindow(
    [change(4, 'x'), change(5, 'y'), change(6, 'x')],
    sockets,
    (changes) => {
      const text = label(changes) as string[]
      serialised.push(text)
      return text.length === 0 ? undefined : { text }
    },
    (socket, message) => sent.set(socket.name, message),
  )
  t.same(serialised, [['4 x', '5 y', '6 x'], ['5 y', '6 x'], ['5 y'], []], 'once for 3, once for 4, once for the socket with its snapshot, once for 9')
  t.equal(sent.get('p3 one'), sent.get('p3 two'), 'the same text for the same position')
  t.equal(sent.get('p3 one'), sent.get('p3 three'))
  t.same(sent.get('p4')?.text, ['5 y', '6 x'])
  t.same(sent.get('snapshot')?.text, ['5 y'], 'x up to 6 is in its snapshot')
  t.notOk(sent.has('reading'), 'nothing to a socket whose snapshot is read')
  t.notOk(sent.has('p9'), 'nothing new for a socket past the window')
  t.same(sockets.map((s) => s.handoff.feedPosition(0)), [6, 6, 6, 6, 0, 6, 9], 'live sockets are at the window\'s last')
  t.equal(sockets[3]?.handoff.sharedPosition, '6', 'the snapshot reached its highest: forgotten')
})

t.test('partitions: each has its own positions; the snapshot matters until every partition reaches its highest', async (t) => {
  // Partition 0: x at 5, others at 3. Partition 1: y at 2, others at 1.
  const snapshot: SnapshotParts = {
    parts: (async function* () {})(),
    partitions: 2,
    position: (contactId) => ({ x: 5, y: 2, z: 1 })[contactId] ?? 3,
    lowest: (partition) => [3, 1][partition] as number,
    highest: (partition) => [5, 2][partition] as number,
  }
  const handoff = new SnapshotHandoff()
  handoff.ask()
  const catchUp = readThrough(handoff, snapshot, [change(4, 'x'), change(2, 'y', 1), change(6, 'x'), change(3, 'y', 1)])
  t.same(label(catchUp), ['6 x', '3 y'], 'each held change against its own contact\'s position')
  t.equal(handoff.feedPosition(0), 6)
  t.equal(handoff.feedPosition(1), 3)
  t.equal(handoff.sharedPosition, '6,3', 'both partitions past their highest: forgotten')

  const other = new SnapshotHandoff()
  other.ask()
  readThrough(other, snapshot, [])
  t.same([other.feedPosition(0), other.feedPosition(1)], [3, 1], 'each partition at its lowest')
  // A window of partition 1 at position 2 is not "seen" because partition 0 is at 3.
  t.same(label(other.unseen([change(2, 'z', 1), change(2, 'y', 1), change(4, 'w')])), ['2 z', '4 w'], 'y at 2 is in the snapshot; z at 2 and w at 4 are not')
  other.passTo([5, undefined])
  t.equal(other.sharedPosition, undefined, 'partition 1 below its highest: the snapshot still matters')
  other.passTo([undefined, 2])
  t.equal(other.sharedPosition, '5,2', 'every partition at its highest: forgotten')
  const sent: string[][] = []
  handOutWindow([change(3, 'q', 1), change(6, 'x')], [{ handoff: other }], (changes) => label(changes), (_, text) => sent.push(text))
  t.same(sent, [['3 q', '6 x']], 'a window of both partitions')
  t.same([other.feedPosition(0), other.feedPosition(1)], [6, 3], 'each partition moves to its last in the window')
})
