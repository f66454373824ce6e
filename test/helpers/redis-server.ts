import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A private redis-server on a loopback port of its own, for tests that kill, restart or freeze
 * Redis: the shared one on 6379 is never touched. No automatic snapshots and no AOF; the data
 * survives a restart only when asked (`restart({ persist: true })` saves before the kill).
 */
export interface TestRedisServer {
  readonly port: number
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** Starts it (again) on its port and resolves once it answers PING. */
  start(): Promise<void>
  /** Shuts it down cleanly (SHUTDOWN NOSAVE) and waits for the exit. */
  stop(): Promise<void>
  /** SIGKILL: the data in memory is gone, the clients' connections drop. */
  kill(): Promise<void>
  /** SIGSTOP: the process holds its connections and answers nothing. */
  freeze(): void
  /** SIGCONT: it answers again, everything it was sent meanwhile in order. */
  thaw(): void
  /** Kills it and starts it on the same port: with its data (saved first) or empty. */
  restart(options?: { persist?: boolean }): Promise<void>
}

/** A free TCP port on 127.0.0.1 (free when asked; redis-server takes it a moment later). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** One round trip of an inline command on a fresh socket: the reply's first line, or an error. */
function inline(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer to ${command} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk) => {
      text += chunk.toString()
      if (!text.includes('\r\n')) return
      clearTimeout(timer)
      socket.destroy()
      resolve(text.slice(0, text.indexOf('\r\n')))
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** Starts a private redis-server; it is thawed and killed, and its directory removed, at teardown. */
export async function startRedisServer(t: Teardown, options: { port?: number } = {}): Promise<TestRedisServer> {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'cat-t-redis-'))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  // A test process that dies without its teardown still takes its server along.
  const onExit = (): void => {
    child?.kill('SIGCONT')
    child?.kill('SIGKILL')
  }
  process.on('exit', onExit)

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error('redis-server is already running')
    const spawned = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--dbfilename', 'dump.rdb', '--logfile', '',
    ], { stdio: 'ignore' })
    child = spawned
    exited = new Promise((resolve) => spawned.once('exit', () => resolve()))
    void exited.then(() => {
      if (child === spawned) child = undefined
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        if ((await inline(port, 'PING')) === '+PONG') return
      } catch {
        // not listening yet
      }
      if (child !== spawned) throw new Error(`redis-server on port ${port} exited at start`)
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  const kill = async (): Promise<void> => {
    const running = child
    if (running === undefined) return
    running.kill('SIGCONT')
    running.kill('SIGKILL')
    await exited
  }

  const server: TestRedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      if (child === undefined) return
      child.kill('SIGCONT')
      await inline(port, 'SHUTDOWN NOSAVE').catch(() => {})
      await exited
    },
    kill,
    freeze() {
      child?.kill('SIGSTOP')
    },
    thaw() {
      child?.kill('SIGCONT')
    },
    async restart({ persist = false } = {}) {
      if (child !== undefined) {
        child.kill('SIGCONT')
        if (persist) {
          const saved = await inline(port, 'SAVE', 10_000)
          if (saved !== '+OK') throw new Error(`SAVE answered ${saved}`)
        }
        await kill()
      }
      if (!persist) rmSync(join(dir, 'dump.rdb'), { force: true })
      await start()
    },
  }
  t.teardown(async () => {
    await kill()
    process.removeListener('exit', onExit)
    rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return server
}
