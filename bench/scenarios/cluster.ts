/**
 * The Redis engine on a Redis Cluster of 3 masters (the bench's own): a site's partitions
 * spread over the masters, so keys and commands should be shared evenly. Each master's share of
 * the site's keys (`INFO keyspace`) and of the commands under a heartbeat load (`INFO
 * commandstats`, the calls of every command over the load), and the CPU per heartbeat of the
 * server and of the masters together beside the single-Redis figures of the heartbeat scenario.
 */
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { Redis } from 'ioredis'
import { clientToken, heartbeatPaths, load, log, round, startPrivateCluster, startServer, writeTokensFile, wrkLoad, type BenchServer } from '../lib.js'
import type { Row, RunOptions, ScenarioResult } from './types.js'

const CONNECTIONS = 50
/** As the heartbeat scenario's: nothing expires, no beat is late, so every beat is the fast path. */
const TIMING = { heartbeatIntervalS: 300, presenceTimeoutS: 900 }
/** Each master's share of the keys and of the commands: a third, ± 5 points. */
const SHARE_TOLERANCE = 0.05

interface NodeCounts {
  keys: number
  calls: number
  cpuMs: number
}

async function nodeCounts(node: string): Promise<NodeCounts> {
  const cut = node.lastIndexOf(':')
  const redis = new Redis({ host: node.slice(0, cut), port: Number(node.slice(cut + 1)) })
  try {
    const [keyspace, commandstats, cpu] = [await redis.info('keyspace'), await redis.info('commandstats'), await redis.info('cpu')]
    const keys = Number(/db0:keys=(\d+)/.exec(keyspace)?.[1] ?? 0)
    let calls = 0
    for (const match of commandstats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1])
    const field = (name: string): number => Number(new RegExp(`${name}:([0-9.]+)`).exec(cpu)?.[1] ?? 0)
    return { keys, calls, cpuMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000 }
  } finally {
    redis.disconnect()
  }
}

const percent = (share: number): string => `${round(share * 100, 1)} %`

export async function clusterScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const contacts = quick ? 10_000 : 100_000
  const durationS = quick ? 2 : 8
  const site = `bench-cluster-${process.pid}`
  log(`cluster: 3 masters of the bench's own, ${contacts} contacts seeded`)
  const cluster = await startPrivateCluster(3)
  const now = Date.now()
  const tokens = Array.from({ length: contacts }, (_, j) => clientToken(j, now))
  const tokensFile = writeTokensFile(tokens)
  let server: BenchServer | undefined
  const data: Record<string, unknown> = { contacts, durationS, masters: cluster.masters }
  try {
    server = await startServer({ kind: 'redis', site, online: contacts, redisClusterNodes: cluster.seeds, timing: TIMING })
    // Every contact once, as in steady state (the heartbeat scenario's warm-up).
    await load(server.port, heartbeatPaths(tokens, 'beat'), { connections: CONNECTIONS, amount: contacts })
    const before = await Promise.all(cluster.masters.map(nodeCounts))
    log(`cluster: heartbeats for ${durationS} s, wrk`)
    const result = await wrkLoad(server.port, tokensFile, { event: 'beat', connections: CONNECTIONS, durationS, pid: server.child.pid })
    const after = await Promise.all(cluster.masters.map(nodeCounts))
    const calls = after.map((a, i) => a.calls - (before[i] as NodeCounts).calls)
    const redisCpuMs = after.map((a, i) => a.cpuMs - (before[i] as NodeCounts).cpuMs)
    const keys = after.map((a) => a.keys)
    data.load = result
    data.perMaster = cluster.masters.map((node, i) => ({ node, keys: keys[i], calls: calls[i], cpuMs: redisCpuMs[i] }))
    const shares = (values: number[]): number[] => values.map((value) => value / Math.max(1, values.reduce((sum, v) => sum + v, 0)))
    const keyShares = shares(keys)
    const callShares = shares(calls)
    const balanced = (values: number[]): boolean => values.every((share) => Math.abs(share - 1 / 3) <= SHARE_TOLERANCE)
    const redisUs = (redisCpuMs.reduce((sum, ms) => sum + ms, 0) * 1000) / Math.max(1, result.requests)
    const rows: Row[] = [
      {
        scenario: 'cluster',
        measure: `each master's share of the site's keys (INFO keyspace), 3 masters, ${contacts} online`,
        value: keyShares.map(percent).join(' / '),
        target: '33 % ± 5 each',
        detail: `keys ${keys.join(' / ')}`,
        pass: balanced(keyShares),
      },
      {
        scenario: 'cluster',
        measure: 'each master\'s share of the commands under the heartbeat load (INFO commandstats)',
        value: callShares.map(percent).join(' / '),
        target: '33 % ± 5 each',
        detail: `calls ${calls.join(' / ')} for ${result.requests} heartbeats`,
        pass: balanced(callShares),
      },
      {
        scenario: 'cluster',
        measure: 'fast path on the cluster: Node CPU per heartbeat; Redis CPU per heartbeat, the masters together',
        value: `${round(result.serverCpuUs ?? Number.NaN, 1)} µs; ${round(redisUs, 1)} µs (${Math.round(result.rps)} req/s)`,
        target: '',
        detail: `Redis CPU per master ${redisCpuMs.map((ms) => `${round((ms * 1000) / Math.max(1, result.requests), 1)} µs`).join(' / ')}; wrk ${round(result.wrkCpuUs, 1)} µs/request; errors ${result.errors}`,
      },
    ]
    return { name: 'cluster', rows, data }
  } finally {
    await server?.stop()
    await cluster.stop()
    rmSync(dirname(tokensFile), { recursive: true, force: true })
  }
}
