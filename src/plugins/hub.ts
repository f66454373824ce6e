import fp from 'fastify-plugin'
import { createDiffHub, type DiffHub } from '../hub/diff-hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: DiffHub
  }
}

export interface HubOptions {
  /** Bytes a dashboard socket may lag before it is closed with 1013. */
  sendBufferBytes?: number
}

/** Sends the dashboards a snapshot of who is online, then the changes as diffs. */
export const hubPlugin = fp<HubOptions>(async (app, { sendBufferBytes }) => {
  const { metrics } = app
  const hub = createDiffHub({
    engine: app.presence,
    diffIntervalMs: app.settings.current.diffIntervalMs,
    sendBufferBytes,
    now: app.now,
    log: app.log,
    ...(metrics.enabled ? { observeDiffLatency: (seconds: number) => metrics.diffLatency.observe(seconds) } : {}),
  })
  // The sockets were closed with 1012 before the server closed (see websocket.ts); this stops the feed.
  const stopFollowing = app.settings.onChange((next) => hub.setDiffInterval(next.diffIntervalMs))
  app.addHook('onClose', async () => {
    stopFollowing()
    hub.close()
  })
  app.decorate('hub', hub)
}, { name: 'hub', dependencies: ['shared-state', 'metrics', 'settings'] })
