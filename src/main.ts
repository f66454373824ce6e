import { randomBytes } from 'node:crypto'
import { loadConfigOrExit, ConfigError, type Config } from './config/config.js'
import { buildApp } from './app.js'
import { signToken } from './auth/tokens.js'
import { CLOSE_CODES } from './errors/errors.js'
import { servesDemo } from './routes/snippet.js'

function startupBanner(config: Config, baseUrl: string): string {
  const adminToken = signToken({ aud: 'admin', sub: 'local-admin', name: 'Local admin', ttlS: 12 * 3600 }, config.secrets)
  const lines = [
    '',
    `Client Activity Tracker listening on ${baseUrl}`,
    `  presence: ${config.redisClusterNodes !== undefined ? 'Redis Cluster' : config.redisUrl !== undefined ? 'Redis' : 'in-memory (one instance only; set REDIS_URL for more)'}`,
    `  admin dashboard: ${baseUrl}/admin#token=${adminToken}`,
    `  who is online:   curl -H 'Authorization: Bearer ${adminToken}' ${baseUrl}/admin/api/online`,
    `  live feed:       ${baseUrl.replace(/^http/, 'ws')}/admin/ws?token=<admin token>`,
    ...(servesDemo(config) ? [`  demo portal:     ${baseUrl}/demo  (accept the banner, then watch the dashboard)`] : []),
    ...(config.demoMode ? ['  demo mode:       on: the staff side is read-only (every change answers 403 demo_mode)'] : []),
    ...(config.demoTraffic > 0 ? [`  demo traffic:    ${config.demoTraffic} simulated contacts browse the demo portal; all online within ${config.heartbeatIntervalS} s`] : []),
    '  (the admin token above is valid for 12 hours; mint more with `npx cat-presence token --aud admin --sub ID`)',
  ]
  if (config.secretGenerated) {
    lines.push('  WARNING: CAT_SECRET is not set; a random secret was generated for this start, so tokens die with the process.')
  }
  return lines.join('\n') + '\n'
}

async function main(): Promise<void> {
  const config = loadConfigOrExit()
  let app: Awaited<ReturnType<typeof buildApp>>
  try {
    app = await buildApp(config, { instanceId: `cat-${randomBytes(4).toString('hex')}` })
  } catch (error) {
    // A broken language file is a configuration error too: one line, no stack.
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
  const address = await app.listen({ port: config.port, host: config.host })
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const port = new URL(address).port || String(config.port)
  // The banner carries an admin token meant for the operator's eyes: it goes to the terminal
  // (stderr), never into the JSON log stream on stdout, and never in production.
  if (!config.production) process.stderr.write(startupBanner(config, `http://${shownHost}:${port}`))

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'draining')
    app.draining = true
    // Dashboards reconnect elsewhere at once on 1012 (service restart).
    app.hub.close(CLOSE_CODES.serviceRestart.code, CLOSE_CODES.serviceRestart.reason)
    const forced = setTimeout(() => process.exit(1), 10_000)
    forced.unref()
    try {
      await app.close()
      process.exit(0)
    } catch (error) {
      app.log.error({ err: error }, 'shutdown failed')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

await main()
