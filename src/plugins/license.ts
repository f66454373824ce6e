import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { createLicenseManager, type LicenseManager } from '../license/license-manager.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The install's licence: its state (a field), activation and validation. */
    license: LicenseManager
  }
}

export interface LicenseOptions {
  /** Sent to the licence server as this instance's id; random per start by default. */
  instanceId?: string
  /** ms between re-reads of the stored licence (and validations when due); 0 leaves ticking to the caller (tests). */
  pollMs?: number
}

/**
 * The licence (docs/licensing.md). At start it reads the stored lease, without network; the
 * activation of CAT_LICENSE_KEY or a validation that is due then runs in the background, so a
 * licence server that is down never stops a start. Every instance re-reads the stored licence
 * every few seconds.
 */
export const licensePlugin = fp<LicenseOptions>(async (app, { instanceId, pollMs = 5000 }) => {
  const manager = createLicenseManager({
    license: app.config.license,
    store: app.activity,
    now: app.now,
    instanceId: instanceId ?? randomUUID(),
    log: app.log,
  })
  app.decorate('license', manager)
  if (app.config.license === undefined) return
  await manager.load()
  void manager.tick()
  const timer = pollMs > 0 ? setInterval(() => void manager.tick(), pollMs).unref() : undefined
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await manager.close()
  })
}, { name: 'license', dependencies: ['core', 'database'] })
