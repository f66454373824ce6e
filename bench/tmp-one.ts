import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { signToken } from '../src/auth/tokens.js'
const kind = process.argv[2] ?? 'memory'
const N = 20000
const paths: string[] = []
for (let j = 0; j < N; j++) paths.push(`/cat_heartbeat?token=${signToken({ aud: 'client', sub: `contact-${j}`, clientId: 'k', ttlS: 3600 }, ['bench-secret-0123456789abcdef'])}&sid=tab${String(j).padStart(8, '0')}&path=%2Fclients%2Ftickets&title=Support%20tickets&event=beat`)
const child = spawn(process.execPath, [...(process.argv[3] ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), '--import', 'tsx', 'bench/server.ts', kind, String(N), 'b1'], { stdio: ['ignore', 'pipe', 'inherit'] })
let port = 0
for await (const line of createInterface({ input: child.stdout! })) { const m = /^ready (\d+)/.exec(line); if (m) { port = Number(m[1]); break } }
for (let k = 0; k < 3; k++) {
  let i = 0
  const r = await autocannon({ url: `http://127.0.0.1:${port}`, connections: 50, duration: 5, requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % N] as string }) }] })
  console.log(kind, r.requests.average, r.non2xx)
}
child.kill('SIGTERM')
