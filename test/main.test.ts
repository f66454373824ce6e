/**
 * The real entry point, started as a user starts it: the admin token of the start-up banner
 * goes to the terminal (stderr) in development, never to stdout (the JSON log stream), and is
 * not printed at all in production.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createTestDataDir } from './helpers/database.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/

/** Starts src/main.ts with `env`, waits until it listens, stops it with SIGTERM, returns both streams. */
function runMain(t: Test, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', CAT_DATA_DIR: createTestDataDir(t, 'main'), ...env }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let stopped = false
    const stopWhenListening = (): void => {
      // Fastify logs "Server listening" once the socket is bound; the banner follows at once.
      if (stopped || !stdout.includes('Server listening')) return
      stopped = true
      setTimeout(() => child.kill('SIGTERM'), 300)
    }
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      stopWhenListening()
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('development: the banner and its admin token are on stderr only', async (t) => {
  const { code, stdout, stderr } = await runMain(t, { NODE_ENV: 'development', CAT_SECRET: 'main-test-secret-0123456789' })
  t.equal(code, 0, stderr)
  t.match(stderr, /admin dashboard: http:\/\/127\.0\.0\.1:\d+\/admin#token=eyJ/, 'the dashboard link with its token, on stderr')
  t.match(stderr, /demo portal: +http:\/\/127\.0\.0\.1:\d+\/demo/, 'the demo portal, bound to loopback')
  t.equal(stderr.match(new RegExp(JWT.source, 'g'))?.length, 2, 'the token printed once, in the dashboard link and the curl line')
  t.notMatch(stdout, JWT, 'no token on stdout')
  for (const line of stdout.trim().split('\n')) t.doesNotThrow(() => JSON.parse(line), `stdout is JSON log lines only: ${line.slice(0, 80)}`)
})

t.test('development on a public address: no demo portal in the banner', async (t) => {
  const { code, stderr } = await runMain(t, { NODE_ENV: 'development', CAT_SECRET: 'main-test-secret-0123456789', HOST: '0.0.0.0' })
  t.equal(code, 0, stderr)
  t.match(stderr, /admin dashboard:/)
  t.notMatch(stderr, /\/demo/, 'no /demo: it is not served')
})

t.test('production: no token anywhere', async (t) => {
  const { code, stdout, stderr } = await runMain(t, { NODE_ENV: 'production', CAT_SECRET: 'main-test-secret-0123456789' })
  t.equal(code, 0, stderr)
  t.notMatch(stdout, JWT, 'no token on stdout')
  t.notMatch(stderr, JWT, 'no token on stderr')
  t.notMatch(stderr, /admin dashboard/, 'no banner')
})
