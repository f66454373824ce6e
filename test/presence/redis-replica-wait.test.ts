/**
 * The wait for replication on a Redis Cluster (src/presence/redis/replica-wait.ts), on a
 * private cluster of the test's own (a replica is frozen and killed here): the script calls
 * that append activity events go out with WAIT behind them, in one pipeline to their slot's
 * master; the fast path goes without. A replica that hangs costs a call the wait, not a hang;
 * a master without a replica is not waited on.
 */
import t from 'tap'
import type { Cluster } from 'ioredis'
import type { Heartbeat } from '../../src/presence/presence-engine.js'
import { openRedisState } from '../../src/shared-state.js'
import { createClock, uniqueSite, until } from '../helpers/app.js'
import { startPrivateCluster } from '../helpers/private-cluster.js'
import { clusterSeeds, clusterShards, slotOf } from '../helpers/redis-cluster.js'

const TIMEOUT = 75_000
const COMMAND_TIMEOUT_MS = 1000
/** A tenth of the command timeout (connections.ts). */
const WAIT_MS = 100

function nav(contactId: string, event: Heartbeat['event'] = 'nav'): Heartbeat {
  return { contactId, clientId: 'client-wait', name: 'Ann Example', company: 'Acme Ltd', sid: `tab-${contactId}`, path: '/clients/tickets', title: 'Tickets', event }
}

t.test('WAIT behind the calls that append events, on their own master', async (t) => {
  // No master is killed here: a node timeout as the shared cluster's, so that a loop held back
  // by a loaded machine is not taken for a failed master.
  const cluster = await startPrivateCluster(t, { nodeTimeoutMs: 5000 })
  const clock = createClock()
  const warnings: string[] = []
  const log = { info: () => {}, warn: (...args: unknown[]) => void warnings.push(String(args.at(-1))) }
  const open = async (site: string, waitReplicas: number): ReturnType<typeof openRedisState> => {
    const state = await openRedisState({
      clusterNodes: clusterSeeds(cluster.seeds), site, now: clock.now, presenceTimeoutMs: TIMEOUT, idleTimeoutMs: 600_000, gapAfterMs: 40_000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS, waitReplicas, log,
    })
    t.teardown(() => state.close())
    return state
  }
  const state = await open(uniqueSite('wait'), 1)
  const engine = state.presence
  // Two contacts of one partition: their calls go to one master.
  const partition = engine.partitionOf('w-a')
  /** A contact id (`prefix…`) of the same partition as w-a. */
  const inPartition = (prefix: string): string => {
    let k = 0
    while (engine.partitionOf(`${prefix}${k}`) !== partition) k += 1
    return `${prefix}${k}`
  }
  const WB = inPartition('w-b')
  const slot = await slotOf(partition.events, cluster.seeds)
  const master = await cluster.masterOf(slot)
  const replica = await cluster.replicaOf(master)
  const masters = (await clusterShards(cluster.seeds)).map((shard) => shard.master)
  const waits = (node: string): Promise<number> => cluster.onNode(node, async (redis) => Number(/cmdstat_wait:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0))
  const waitsOnEvery = (): Promise<number[]> => Promise.all(masters.map(waits))

  t.test('heartbeat, end and sweep are followed by one WAIT each on the master of their slot; the fast path by none', async (t) => {
    const before = await waitsOnEvery()
    t.equal(await engine.heartbeat(nav('w-a')), 'joined')
    // The replica has the event the moment the call returns: WAIT held the answer until it did.
    const onReplica = await cluster.onNode(replica, async (redis) => {
      await redis.call('READONLY')
      return redis.xlen(partition.events)
    })
    t.equal(onReplica, 1, `the replica ${replica} has the join's event`)
    t.equal(await engine.heartbeat(nav('w-a', 'beat')), 'unchanged', 'a periodic beat takes the fast path')
    t.equal(await engine.heartbeat(nav(WB)), 'joined')
    t.equal(await engine.end(WB, 'withdrawn'), true)
    clock.advance(TIMEOUT + 1000)
    t.equal(await engine.sweep(), 1, 'the sweep ends w-a')
    const after = await waitsOnEvery()
    const added = masters.map((_, i) => (after[i] as number) - (before[i] as number))
    t.same(added, masters.map((node) => (node === master ? 4 : 0)), `4 WAITs on ${master} (two joins, an end, a sweep), none elsewhere`)
    t.same(warnings, [], 'every call was replicated in time')
  })

  t.test('CAT_REDIS_WAIT_REPLICAS=0: no WAIT', async (t) => {
    const off = await open(uniqueSite('wait-off'), 0)
    const before = await waitsOnEvery()
    t.equal(await off.presence.heartbeat(nav('w-off')), 'joined')
    t.equal(await off.presence.end('w-off', 'withdrawn'), true)
    t.same(await waitsOnEvery(), before, 'no master got a WAIT')
  })

  t.test('a frozen replica: the call is answered after the wait, counted and logged once', async (t) => {
    cluster.freeze(replica)
    t.teardown(() => cluster.thaw(replica))
    const started = performance.now()
    t.equal(await engine.heartbeat(nav(inPartition('w-c'))), 'joined', 'the call counts: the write is on the master')
    const tookMs = performance.now() - started
    t.equal(await engine.heartbeat(nav(inPartition('w-d'))), 'joined')
    cluster.thaw(replica)
    t.ok(tookMs >= WAIT_MS * 0.9, `it waited for the replica (${Math.round(tookMs)} ms)`)
    t.ok(tookMs < COMMAND_TIMEOUT_MS, `and no longer than the wait, well within the command timeout (${Math.round(tookMs)} ms)`)
    t.equal(warnings.length, 1, 'one log line for both calls (the next comes 10 s later at the earliest)')
    t.match(warnings[0], /answered before a replica had them/)
  })

  t.test('a master whose replica is gone is not waited on', async (t) => {
    await cluster.kill(replica)
    // The slot map (read every 2 s) drops the replica once the cluster has marked it failed.
    await until('the slot map shows no replica', () => ((engine.redis as Cluster).slots[slot]?.length === 1 ? true : undefined), 30_000)
    const before = await waits(master)
    const started = performance.now()
    t.equal(await engine.heartbeat(nav(inPartition('w-e'))), 'joined')
    const tookMs = performance.now() - started
    t.equal(await waits(master), before, 'no WAIT was sent')
    t.comment(`a join on a master without a replica: ${Math.round(tookMs)} ms`)
  })
})
