/**
 * The activity writer into MariaDB: bench/writer.ts in its own process puts a backlog of
 * events in the Redis stream and times the writer draining it into a fresh database.
 */
import { execFileSync } from 'node:child_process'
import { log } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

export async function writerScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  log(`writer: draining a ${quick ? '20 000' : '100 000'}-event backlog into MariaDB`)
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/writer.ts', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const last = out.trim().split('\n').filter((line) => line.startsWith('{')).pop()
  if (last === undefined) throw new Error(`bench/writer.ts printed no result:\n${out}`)
  const result = JSON.parse(last) as { events: number; seconds: number; eventsPerSecond: number }
  const rate = result.eventsPerSecond
  // The drain target is for 100 000 events; a quick run drains fewer and is held to the same rate.
  const drainTargetS = (result.events / 100_000) * 10
  return {
    name: 'writer',
    rows: [
      { scenario: 'activity writer', measure: 'events/s sustained into MariaDB', value: `${rate}/s`, target: '≥ 20 000/s', pass: rate >= 20_000 },
      { scenario: 'activity writer', measure: `drain of a ${result.events}-event backlog`, value: `${result.seconds} s`, target: `≤ ${drainTargetS} s`, pass: result.seconds <= drainTargetS },
    ],
    data: result,
  }
}
