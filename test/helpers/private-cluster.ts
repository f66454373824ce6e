import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A Redis Cluster of its own (3 masters, 3 replicas, on free loopback ports), for the tests
 * that kill a master or move slots: the shared test cluster is never disturbed. Each node is a
 * redis-server process with its own directory and nodes.conf, so a killed node started again
 * rejoins as what the cluster now makes of it. `cluster-node-timeout` is short (2 s unless
 * `nodeTimeoutMs` says otherwise), so a replica takes over a killed master within a few seconds.
 */
export interface PrivateCluster {
  /** `host:port` of every node, in the order created (the first three were the masters). */
  readonly nodes: readonly string[]
  /** The seed nodes as REDIS_CLUSTER_NODES takes them. */
  readonly seeds: string
  /** SIGKILL: the node's memory is gone, its clients' connections drop. */
  kill(node: string): Promise<void>
  /** Starts a node that was killed again, on its port with its nodes.conf. */
  start(node: string): Promise<void>
  /** SIGSTOP: the node keeps its sockets open and answers nothing (its replication stream stalls). */
  freeze(node: string): void
  /** SIGCONT. */
  thaw(node: string): void
  /** The master serving `slot` now, as a node that answers sees it. */
  masterOf(slot: number): Promise<string>
  /** The replica that follows `master` now. */
  replicaOf(master: string): Promise<string>
  /**
   * Resolves once every running node says cluster_state:ok and all agree on 3 masters; with
   * `replicas`, also once every master has a replica (after a create, or a killed node's return).
   */
  settled(options?: { replicas?: boolean; ms?: number }): Promise<void>
  /** A plain connection to one node, closed after `fn`. */
  onNode<T>(node: string, fn: (redis: Redis) => Promise<T>): Promise<T>
}

/** Node ports are drawn from FIRST_PORT … FIRST_PORT + PORT_SPAN, their bus ports 10 000 above. */
const FIRST_PORT = 20_000
const PORT_SPAN = 2700

/** Whether a port on 127.0.0.1 is free now. */
async function canListen(port: number): Promise<boolean> {
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

function portOf(node: string): number {
  return Number(node.slice(node.lastIndexOf(':') + 1))
}

export async function startPrivateCluster(t: Teardown, options: { nodeTimeoutMs?: number } = {}): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cat-cluster-'))
  const ports: number[] = []
  // Cluster nodes also listen on port + 10000 for the bus: both must be free, and stay free
  // until the node takes them. Both lie below Linux's ephemeral range (32768 on), where no
  // connection of another test is given a local port meanwhile; an ephemeral port and its bus
  // port could be (a node then fails to start).
  while (ports.length < 6) {
    const port = FIRST_PORT + Math.floor(Math.random() * PORT_SPAN)
    if (!ports.includes(port) && (await canListen(port)) && (await canListen(port + 10_000))) ports.push(port)
  }
  const nodes = ports.map((port) => `127.0.0.1:${port}`)
  const processes = new Map<string, ChildProcess>()

  async function onNode<T>(node: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis({ host: '127.0.0.1', port: portOf(node), lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null })
    redis.on('error', () => {})
    try {
      await redis.connect()
      return await fn(redis)
    } finally {
      redis.disconnect()
    }
  }

  async function start(node: string): Promise<void> {
    const port = portOf(node)
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir, { recursive: true })
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
      '--logfile', join(nodeDir, 'redis.log'),
    ], { stdio: 'ignore' })
    processes.set(node, child)
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        if ((await onNode(node, (redis) => redis.ping())) === 'PONG') return
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${node} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async function kill(node: string): Promise<void> {
    const child = processes.get(node)
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await exited
  }

  t.teardown(async () => {
    for (const node of nodes) await kill(node)
    rmSync(dir, { recursive: true, force: true })
  })

  for (const node of nodes) await start(node)
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)

  type SlotRange = [number, number, [string, number], ...[string, number][]]
  const slotsOn = (node: string): Promise<SlotRange[]> => onNode(node, (redis) => redis.cluster('SLOTS') as unknown as Promise<SlotRange[]>)

  async function slots(): Promise<SlotRange[]> {
    for (const node of nodes) {
      try {
        return await slotsOn(node)
      } catch {
        // a node that is down: ask the next
      }
    }
    throw new Error('no node of the private cluster answers')
  }

  const cluster: PrivateCluster = {
    nodes,
    seeds: nodes.join(','),
    kill,
    start,
    freeze: (node) => processes.get(node)?.kill('SIGSTOP'),
    thaw: (node) => processes.get(node)?.kill('SIGCONT'),
    onNode,
    async masterOf(slot) {
      const range = (await slots()).find(([first, last]) => slot >= first && slot <= last)
      if (range === undefined) throw new Error(`no master serves slot ${slot}`)
      return `${range[2][0]}:${range[2][1]}`
    },
    async replicaOf(master) {
      const range = (await slots()).find(([, , m]) => `${m[0]}:${m[1]}` === master)
      const replica = range?.[3]
      if (replica === undefined) throw new Error(`${master} has no replica`)
      return `${replica[0]}:${replica[1]}`
    },
    async settled({ replicas = false, ms = 30_000 } = {}) {
      const deadline = Date.now() + ms
      for (;;) {
        const running = nodes.filter((node) => {
          const child = processes.get(node)
          return child !== undefined && child.exitCode === null && child.signalCode === null
        })
        const states = await Promise.all(running.map((node) => onNode(node, async (redis) => String(await redis.cluster('INFO'))).catch(() => '')))
        const ok = states.every((info) => /cluster_state:ok/.test(info) && /cluster_size:3/.test(info))
        // Every node's slot map, not one's: a client reads its map from any node, and one that
        // does not list a replica yet would have it wait for none.
        const withReplicas = async (): Promise<boolean> => (await Promise.all(running.map((node) => slotsOn(node).catch(() => [])))).every((map) => map.length > 0 && map.every((range) => range.length >= 4))
        if (ok && (!replicas || (await withReplicas()))) return
        if (Date.now() > deadline) throw new Error(`the private cluster is not ok within ${ms} ms`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
  }
  await cluster.settled({ replicas: true })
  return cluster
}
