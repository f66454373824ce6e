/**
 * The activity writer into MariaDB: bench/writer.ts in its own process (with the Node flags of
 * `npm start`, as the writer runs inside the server) puts a backlog of events in the Redis
 * stream and times the writer draining it into a fresh database. A full run drains three
 * times and reports the median drain; a quick run drains once.
 */
import { execFileSync } from 'node:child_process'
import { SERVER_NODE_ARGS, log, medianBy } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

interface Drain {
  events: number
  seconds: number
  eventsPerSecond: number
  cpuUsPerEvent?: { writer: number; mariadb?: number; redis: number }
}

function drain(quick: boolean): Drain {
  const out = execFileSync(process.execPath, [...SERVER_NODE_ARGS, '--import', 'tsx', 'bench/writer.ts', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const last = out.trim().split('\n').filter((line) => line.startsWith('{')).pop()
  if (last === undefined) throw new Error(`bench/writer.ts printed no result:\n${out}`)
  return JSON.parse(last) as Drain
}

export async function writerScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const runs = quick ? 1 : 3
  const drains: Drain[] = []
  for (let k = 0; k < runs; k += 1) {
    log(`writer: draining a ${quick ? '20 000' : '100 000'}-event backlog into MariaDB (${k + 1} of ${runs})`)
    drains.push(drain(quick))
  }
  const result = medianBy(drains, (run) => run.eventsPerSecond)
  const rate = result.eventsPerSecond
  const cpu = result.cpuUsPerEvent
  const detail = cpu === undefined ? undefined : `CPU per event: writer ${cpu.writer} µs${cpu.mariadb === undefined ? '' : `, MariaDB ${cpu.mariadb} µs`}, Redis ${cpu.redis} µs; drains ${drains.map((d) => `${d.eventsPerSecond}/s`).join(', ')}`
  // The drain target is for 100 000 events; a quick run drains fewer and is held to the same rate.
  const drainTargetS = (result.events / 100_000) * 10
  const of = runs > 1 ? ` (median of ${runs})` : ''
  return {
    name: 'writer',
    rows: [
      { scenario: 'activity writer', measure: `events/s sustained into MariaDB${of}`, value: `${rate}/s`, target: '≥ 20 000/s', pass: rate >= 20_000, ...(detail === undefined ? {} : { detail }) },
      { scenario: 'activity writer', measure: `drain of a ${result.events}-event backlog${of}`, value: `${result.seconds} s`, target: `≤ ${drainTargetS} s`, pass: result.seconds <= drainTargetS },
    ],
    data: { ...result, drains },
  }
}
