import fp from 'fastify-plugin'
import { createSweeper } from '../presence/sweeper.js'

export interface SweeperPluginOptions {
  /** ms between sweeps of expired presence; 0 leaves sweeping to the caller (tests). */
  intervalMs: number
}

/** Runs the presence sweeper on its timer, stopped first at close. */
export const sweeperPlugin = fp<SweeperPluginOptions>(async (app, { intervalMs }) => {
  if (intervalMs <= 0) return
  const sweeper = createSweeper({ presence: app.presence, intervalMs, log: app.log })
  app.addHook('onClose', async () => sweeper.stop())
  sweeper.start()
}, { name: 'sweeper', dependencies: ['shared-state'] })
