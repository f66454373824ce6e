/**
 * A server for the benchmarks, in its own process so the load generator does not share its
 * event loop. `node --import tsx bench/server.ts bare|memory|redis CONTACTS SITE`
 * prints `ready PORT` once listening (and, for the engines, once CONTACTS contacts are online).
 */
import Fastify from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/config.js'

const [kind = 'bare', contactsArg = '0', site = 'bench'] = process.argv.slice(2)
const contacts = Number(contactsArg)
export const BENCH_SECRET = 'bench-secret-0123456789abcdef'

async function main(): Promise<void> {
  if (kind === 'bare') {
    // The baseline: the fastest answer Fastify gives on this machine, a route returning 204.
    const app = Fastify({ logger: false })
    app.get('/cat_heartbeat', async (_request, reply) => reply.code(204).send())
    await app.listen({ port: 0, host: '127.0.0.1' })
    process.stdout.write(`ready ${(app.server.address() as { port: number }).port}\n`)
    return
  }
  const config = loadConfig({
    CAT_SECRET: BENCH_SECRET,
    LOG_LEVEL: 'silent',
    CAT_SITE: site,
    CAT_DATA_DIR: `/tmp/cat-bench-${site}-${kind}`,
    ...(kind === 'redis' ? { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' } : {}),
  })
  const app = await buildApp(config, { sweepIntervalMs: 1000 })
  const chunk = 500
  for (let i = 0; i < contacts; i += chunk) {
    const batch: Promise<unknown>[] = []
    for (let j = i; j < Math.min(contacts, i + chunk); j += 1) {
      // Every contact has consented (heartbeats are refused otherwise), as after the banner.
      batch.push(app.consent.record({ contactId: `contact-${j}`, clientId: `client-${j % 1000}`, decision: 'granted', version: 'bench', locale: 'en', at: Date.now(), ip: '127.0.0.0', userAgent: 'bench' }))
      batch.push(app.presence.heartbeat({ contactId: `contact-${j}`, clientId: `client-${j % 1000}`, name: `Contact ${j}`, company: `Company ${j % 1000}`, sid: `tab${String(j).padStart(8, '0')}`, path: '/clients/tickets', title: 'Support tickets', event: 'nav' }))
    }
    await Promise.all(batch)
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`ready ${(app.server.address() as { port: number }).port}\n`)
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
}

await main()
