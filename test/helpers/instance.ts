/**
 * The server as a real process: `node --import tsx src/main.ts` with PORT=0, as `npm start`
 * runs its compiled twin, so a test can kill it with a signal the way an orchestrator does.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { SECRET } from './app.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface Instance {
  readonly origin: string
  readonly port: number
  readonly pid: number
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  signal(name: NodeJS.Signals): void
}

/**
 * Starts one instance on a free port and resolves once it listens. The listening address is
 * read from Fastify's own "Server listening at" log line (LOG_LEVEL=info); the process is
 * killed at teardown if it still runs. Overload shedding is off unless `env` sets
 * CAT_MAX_EVENT_LOOP_DELAY_MS: the suite runs its files side by side with browsers and PHP, and
 * a loop held back by that is the test machine's load, not the instance's (test/app/overload
 * tests shedding itself).
 */
export async function startInstance(t: Teardown, env: Record<string, string>): Promise<Instance> {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CAT_SECRET: SECRET, LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', CAT_MAX_EVENT_LOOP_DELAY_MS: '0', ...env }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const found = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (found !== null) resolve(Number(found[1]))
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    void exited.then(({ code }) => reject(new Error(`instance exited with ${code} before listening:\n${output.slice(-2000)}`)))
    setTimeout(() => reject(new Error(`instance did not listen within 30 s:\n${output.slice(-2000)}`)), 30_000).unref()
  })
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    output: () => output,
    exited,
    signal(name) {
      child.kill(name)
    },
  }
}
