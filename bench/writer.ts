/**
 * The activity writer into MariaDB: how long a backlog of EVENTS events in the Redis stream
 * takes to drain, and so how many events per second the writer sustains.
 * `node --import tsx bench/writer.ts [--quick] [--batch N] [--parallel N] [--depth N] [--ceiling]` (default: the
 * writer's own batch and parallelism). `--ceiling` then times, in the same run, plain mysql2
 * bulk INSERTs of the rows the writer left (read back, no logic, 2 000 rows per statement and
 * transaction, two connections at once, into an empty copy of the schema): the raw events alone, and the events with
 * the final sessions and page visits, each row written once — what the database and the driver
 * allow at best on this machine.
 *
 * The CPU time of the drain per event is printed for this process (the writer), MariaDB (when it
 * runs on this machine: its pid file is readable) and Redis. BENCH_PROFILE=DIR writes a V8 CPU
 * profile of the drain alone to DIR/writer-<pid>.cpuprofile (`bench/profile-summary.ts`).
 */
import { randomBytes } from 'node:crypto'
import pino from 'pino'
import { Redis } from 'ioredis'
import { createConnection, type Connection } from 'mysql2/promise'
import { openDatabase, migrateDatabase } from '../src/activity/database.js'
import { createSqlActivityStore } from '../src/activity/sql-activity-store.js'
import { createActivityWriter } from '../src/activity/activity-writer.js'
import { DEFAULT_PARTITIONS, locate, presenceKeys, siteKeys, sitePartitions } from '../src/presence/redis/keys.js'
import { openRedisState } from '../src/shared-state.js'
import { readFileSync } from 'node:fs'
import { MYSQL_URL, REDIS_URL, processCpuMs, profileFromHere, redisCpuMs } from './lib.js'

const quick = process.argv.includes('--quick')
function option(name: string): number | undefined {
  const index = process.argv.indexOf(name)
  return index === -1 ? undefined : Number(process.argv[index + 1])
}
const BATCH = option('--batch')
const PARALLEL = option('--parallel')
const DEPTH = option('--depth')
const CEILING = process.argv.includes('--ceiling')
const EVENTS = quick ? 20_000 : 100_000

/** CPU ms of the local MariaDB server, or undefined when it is elsewhere. */
async function databaseCpuMs(admin: Connection): Promise<number | undefined> {
  try {
    const [[row]] = (await admin.query('SELECT @@pid_file AS file')) as unknown as [[{ file: string }]]
    return processCpuMs(Number(readFileSync(row.file, 'utf8').trim()))
  } catch {
    return undefined
  }
}

async function main(): Promise<void> {
  const name = `cat_bench_${randomBytes(4).toString('hex')}`
  const admin = await createConnection({ uri: MYSQL_URL })
  await admin.query(`CREATE DATABASE \`${name}\``)
  const site = `bench-writer-${process.pid}`
  const partitions = sitePartitions(site, DEFAULT_PARTITIONS)
  const streams = partitions.map((keys) => keys.events)
  const backlog = async (): Promise<number> => (await Promise.all(streams.map((stream) => redis.xlen(stream)))).reduce((sum, n) => sum + n, 0)
  const redis = new Redis(REDIS_URL)
  try {
    // A realistic mix: each contact joins, navigates twice, hides, comes back, leaves.
    const kinds = ['join', 'nav', 'nav', 'hidden', 'visible', 'leave', 'end'] as const
    const contacts = Math.ceil(EVENTS / kinds.length)
    let written = 0
    const t0 = 1_800_000_000_000
    for (let step = 0; step < kinds.length && written < EVENTS; step += 1) {
      let pipeline = redis.pipeline()
      for (let c = 0; c < contacts && written < EVENTS; c += 1) {
        const type = kinds[step] as string
        const fields = ['type', type, 'contact', `contact-${c}`, 'client', `client-${c % 500}`, 'sid', `tab${c}`, 'path', `/clients/page-${step}`, 'title', `Page ${step}`, 'at', String(t0 + step * 10_000 + c)]
        if (type === 'join') fields.push('name', `Contact ${c}`, 'company', `Company ${c % 500}`)
        if (type === 'end') fields.push('reason', 'leave')
        // Each contact's events in its partition's stream, as the presence scripts append them.
        pipeline.xadd(streams[locate(`contact-${c}`, DEFAULT_PARTITIONS).partition] as string, '*', ...fields)
        written += 1
        if (written % 5000 === 0) {
          await pipeline.exec()
          pipeline = redis.pipeline()
        }
      }
      await pipeline.exec()
    }
    const database = await openDatabase({ url: `${MYSQL_URL}/${name}`, dataDir: '/tmp' })
    await migrateDatabase(database)
    const store = createSqlActivityStore({ database, now: Date.now })
    const state = await openRedisState({ url: REDIS_URL, site, now: Date.now, presenceTimeoutMs: 75_000, idleTimeoutMs: 600_000, gapAfterMs: 40_000 })
    const writer = createActivityWriter({ source: await state.eventLog.consumer('bench'), store, log: pino({ level: 'warn' }), batchSize: BATCH, parallel: PARALLEL, depth: DEPTH })
    // The writer's own loop, as in service (it reads the next batch while one is written);
    // drained when the stream is empty: written entries are acknowledged and deleted.
    const stopProfile = await profileFromHere('writer')
    const cpu = { node: process.cpuUsage(), database: await databaseCpuMs(admin), redis: await redisCpuMs(redis) }
    const started = process.hrtime.bigint()
    writer.start()
    while ((await backlog()) > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const nodeCpu = process.cpuUsage(cpu.node)
    const databaseCpu = await databaseCpuMs(admin)
    const perEvent = (ms: number): number => Math.round((ms * 1000) / EVENTS)
    const cpuUsPerEvent = {
      writer: perEvent((nodeCpu.user + nodeCpu.system) / 1000),
      ...(cpu.database === undefined || databaseCpu === undefined ? {} : { mariadb: perEvent(databaseCpu - cpu.database) }),
      redis: perEvent((await redisCpuMs(redis)) - cpu.redis),
    }
    await stopProfile()
    const [[{ stored }]] = (await admin.query(`SELECT COUNT(*) AS stored FROM \`${name}\`.cat_events`)) as unknown as [[{ stored: number }]]
    const total = Number(stored)
    if (total !== EVENTS) throw new Error(`${total} of ${EVENTS} events written`)
    const [[counts]] = (await admin.query(`SELECT (SELECT COUNT(*) FROM \`${name}\`.cat_events) AS events, (SELECT COUNT(*) FROM \`${name}\`.cat_sessions) AS sessions, (SELECT COUNT(*) FROM \`${name}\`.cat_page_visits) AS pages`)) as unknown as [[Record<string, number>]]
    console.log(JSON.stringify({ events: total, batch: BATCH ?? 'default', parallel: PARALLEL ?? 'default', depth: DEPTH ?? 'default', seconds: Number(seconds.toFixed(2)), eventsPerSecond: Math.round(total / seconds), cpuUsPerEvent, rows: counts }))
    await writer.stop()
    await state.close()
    await database.close()
    if (CEILING) console.log(JSON.stringify(await ceiling(admin, name, total)))
  } finally {
    await redis.del(siteKeys(site).layout, ...streams, ...partitions.map((keys) => keys.seq), ...presenceKeys(partitions))
    await redis.quit()
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await admin.end()
  }
}

/** Plain bulk INSERTs of the rows in database `name`, table by table, into a fresh copy. */
async function ceiling(admin: Connection, name: string, events: number): Promise<Record<string, number>> {
  const copy = `${name}_ceiling`
  await admin.query(`CREATE DATABASE \`${copy}\``)
  try {
    const target = await openDatabase({ url: `${MYSQL_URL}/${copy}`, dataDir: '/tmp' })
    await migrateDatabase(target)
    await target.close()
    // Two connections at once, as the writer runs two transactions at once.
    const connections = [await createConnection({ uri: `${MYSQL_URL}/${copy}` }), await createConnection({ uri: `${MYSQL_URL}/${copy}` })]
    try {
      const seconds: Record<string, number> = {}
      for (const table of ['cat_events', 'cat_sessions', 'cat_page_visits']) {
        const [rows] = (await admin.query({ sql: `SELECT * FROM \`${name}\`.${table}`, rowsAsArray: true })) as unknown as [unknown[][]]
        const started = process.hrtime.bigint()
        await Promise.all(
          connections.map(async (connection, k) => {
            for (let i = k * 2000; i < rows.length; i += 2000 * connections.length) {
              await connection.query('START TRANSACTION')
              await connection.query(`INSERT INTO ${table} VALUES ?`, [rows.slice(i, i + 2000)])
              await connection.query('COMMIT')
            }
          }),
        )
        seconds[table] = Number(process.hrtime.bigint() - started) / 1e9
      }
      const eventsOnly = seconds.cat_events as number
      const all = eventsOnly + (seconds.cat_sessions as number) + (seconds.cat_page_visits as number)
      return { ceilingRawEventsPerSecond: Math.round(events / eventsOnly), ceilingEventsSessionsPagesPerSecond: Math.round(events / all) }
    } finally {
      await Promise.all(connections.map((connection) => connection.end()))
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${copy}\``)
  }
}

await main()
