/**
 * The heartbeat batcher (src/presence/redis/batcher.ts), driven by hand: its turns of the event
 * loop are an injected scheduler the test steps, its sends promises the test answers.
 */
import t from 'tap'
import { BEATS_PER_CALL, Batcher, HEARTBEATS_PER_CALL, SEND_FULL_AT, TURNS_BEFORE_SEND, type Batched } from '../../src/presence/redis/batcher.js'

interface Item extends Batched {
  id: string
}

interface Call {
  ids: string[]
  fast: boolean
  answer(results?: unknown[]): void
  fail(error: unknown): void
}

const TIMED_OUT = new Error('Command timed out')

/** A batcher whose turns run when `turn()` is called and whose sends are answered by hand. */
function harness() {
  let scheduled: (() => void)[] = []
  const calls: Call[] = []
  const settled = new Map<string, unknown>()
  const batcher = new Batcher<Item>({
    schedule: (fn) => scheduled.push(fn),
    timedOut: (error) => error === TIMED_OUT,
    send: (run) =>
      new Promise((resolve, reject) => {
        calls.push({
          ids: run.map((item) => item.id),
          fast: (run[0] as Item).fast,
          answer: (results) => resolve(results ?? run.map((item) => `done ${item.id}`)),
          fail: reject,
        })
      }),
  })
  /** Queues an item; what it settles with lands in `settled`. */
  const add = (id: string, fast = true): void => {
    batcher.add({
      id,
      fast,
      resolve: (result) => settled.set(id, result),
      reject: (error) => settled.set(id, error),
    })
  }
  /** Ends one turn of the event loop: what was scheduled in it runs. */
  const turn = (): void => {
    const due = scheduled
    scheduled = []
    for (const fn of due) fn()
  }
  /** Lets the promise callbacks (the batcher's reaction to an answer) run. */
  const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  /** The turns a send waits (TURNS_BEFORE_SEND), all ended. */
  const wait = (): void => {
    for (let k = 0; k < TURNS_BEFORE_SEND; k += 1) turn()
  }
  return { batcher, add, turn, wait, microtasks, calls, settled, scheduledCount: () => scheduled.length }
}

t.test('a send waits TURNS_BEFORE_SEND turns: heartbeats of the turns until then join the call', async (t) => {
  const h = harness()
  t.equal(TURNS_BEFORE_SEND, 3)
  h.add('ann')
  h.turn()
  t.equal(h.calls.length, 0, 'not sent after one turn')
  h.add('bob') // read in the next turn, as a request whose bytes arrived while Ann's was handled
  h.turn()
  t.equal(h.calls.length, 0, 'not sent after two turns')
  h.add('cid') // and one in the turn after
  h.turn()
  t.strictSame(h.calls.map((c) => c.ids), [['ann', 'bob', 'cid']], "Bob's and Cid's beats went in the call with Ann's")
  h.calls[0]?.answer()
  await h.microtasks()
  t.strictSame([...h.settled], [['ann', 'done ann'], ['bob', 'done bob'], ['cid', 'done cid']], 'each settled with its own result')
  t.equal(h.scheduledCount(), 0, 'nothing queued: nothing scheduled')
})

t.test('a heartbeat past the wait goes in a call of its own', async (t) => {
  const h = harness()
  h.add('ann')
  h.wait()
  t.equal(h.calls.length, 1)
  h.calls[0]?.answer()
  await h.microtasks()
  h.add('cid')
  h.wait()
  t.strictSame(h.calls.map((c) => c.ids), [['ann'], ['cid']])
})

t.test('heartbeats that arrive while a call is unanswered wait for its answer and go as one call', async (t) => {
  const h = harness()
  h.add('ann')
  h.wait()
  t.equal(h.calls.length, 1)
  // Each in a turn of its own, as requests arriving one after another while Redis is busy.
  for (const id of ['bob', 'cid', 'dan']) {
    h.add(id)
    h.wait()
  }
  t.equal(h.calls.length, 1, 'only the first went while its answer was awaited')
  t.equal(h.scheduledCount(), 0, 'no send is scheduled while one is unanswered')
  h.calls[0]?.answer()
  await h.microtasks()
  t.equal(h.calls.length, 1, 'after the answer, the wait of TURNS_BEFORE_SEND turns again')
  h.wait()
  t.strictSame(h.calls.map((c) => c.ids), [['ann'], ['bob', 'cid', 'dan']], 'the three that waited went together')
  h.calls[1]?.answer()
  await h.microtasks()
  t.strictSame([...h.settled.keys()], ['ann', 'bob', 'cid', 'dan'])
})

t.test('a queue is sent as one call per run of a kind, in the order of arrival, runs cut at their most per call', async (t) => {
  const h = harness()
  h.add('b1')
  h.add('f1', false)
  h.add('f2', false)
  h.add('b2')
  h.add('b3')
  for (let i = 0; i < BEATS_PER_CALL + 1; i += 1) h.add(`many-${i}`)
  h.wait()
  t.strictSame(h.calls.map((c) => [c.fast, c.ids.length]), [[true, 1], [false, 2], [true, BEATS_PER_CALL], [true, 3]])
  t.strictSame(h.calls[2]?.ids.slice(0, 3), ['b2', 'b3', 'many-0'], 'in the order they arrived')
  t.ok(HEARTBEATS_PER_CALL >= SEND_FULL_AT, 'a run of full heartbeats is sent before it reaches its most per call')
})

t.test('a heartbeat for the full script that makes the queue SEND_FULL_AT long sends it at once', async (t) => {
  const h = harness()
  for (let i = 0; i < SEND_FULL_AT - 1; i += 1) h.add(`beat-${i}`)
  t.equal(h.calls.length, 0, 'fast beats alone wait for the turns')
  h.add('nav', false)
  t.strictSame(h.calls.map((c) => [c.fast, c.ids.length]), [[true, SEND_FULL_AT - 1], [false, 1]], 'sent at once, without a turn')
  // Another send goes even while that one is unanswered: the queue is long enough.
  for (let i = 0; i < SEND_FULL_AT; i += 1) h.add(`nav-${i}`, false)
  t.equal(h.calls.length, 3)
  h.calls.forEach((c) => c.answer())
  await h.microtasks()
  t.equal(h.settled.size, 2 * SEND_FULL_AT)
})

t.test('flush sends what is queued now, in order (an end goes after the heartbeats accepted before it)', async (t) => {
  const h = harness()
  h.add('ann')
  h.add('bob', false)
  h.batcher.flush()
  t.strictSame(h.calls.map((c) => c.ids), [['ann'], ['bob']])
  h.batcher.flush()
  t.equal(h.calls.length, 2, 'nothing queued: nothing sent')
})

t.test('a failed call rejects its own heartbeats only; a timed-out one also what queued behind it', async (t) => {
  const h = harness()
  h.add('ann')
  h.wait()
  h.add('bob')
  const refused = new Error('ERR something')
  h.calls[0]?.fail(refused)
  await h.microtasks()
  t.equal(h.settled.get('ann'), refused)
  t.notOk(h.settled.has('bob'), 'what queued behind a failed call still goes')
  h.wait()
  t.strictSame(h.calls.map((c) => c.ids), [['ann'], ['bob']])

  h.add('cid')
  h.add('dan', false)
  h.calls[1]?.fail(TIMED_OUT)
  await h.microtasks()
  t.equal(h.settled.get('bob'), TIMED_OUT)
  t.equal(h.settled.get('cid'), TIMED_OUT, 'queued behind a call Redis did not answer in time: failed with it')
  t.equal(h.settled.get('dan'), TIMED_OUT)
  h.wait()
  t.equal(h.calls.length, 2, 'nothing left to send')
})
