/**
 * One dashboard's snapshot, timed in a process of its own, as a dashboard is a browser of its
 * own: a bench process that holds a million tokens and their paths has a heap whose
 * collections would count against the server.
 *
 *   node --import tsx bench/snapshot-client.ts PORT EXPECT_ONLINE ADMIN_TOKEN
 *
 * Prints one line: `snapshot {"firstByteMs":…,"lastByteMs":…,"bytes":…,"online":…}`.
 */
import { spawn } from 'node:child_process'
import { snapshotTiming } from './scenarios/heartbeat.js'

type SnapshotTiming = Awaited<ReturnType<typeof snapshotTiming>>

/** Runs this file as a child process and resolves with its timing. */
export function snapshotTimingApart(port: number, expectOnline: number, token: string): Promise<SnapshotTiming> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/snapshot-client.ts', String(port), String(expectOnline), token], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => (out += chunk))
    child.once('error', reject)
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('snapshot '))
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('snapshot '.length)) as SnapshotTiming)
      else reject(new Error(`the snapshot client exited with ${code}`))
    })
  })
}

if (process.argv[1]?.endsWith('snapshot-client.ts') === true) {
  const [port, expectOnline, token] = process.argv.slice(2)
  if (port === undefined || expectOnline === undefined || token === undefined) throw new Error('usage: snapshot-client.ts PORT EXPECT_ONLINE ADMIN_TOKEN')
  const timing = await snapshotTiming(Number(port), Number(expectOnline), token)
  process.stdout.write(`snapshot ${JSON.stringify(timing)}\n`)
}
