import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { WEBHOOK_GROUP } from '../activity/event-log/redis-event-log.js'
import { createWebhookDeliverer } from '../webhooks/webhook-deliverer.js'
import { createWebhookSender } from '../webhooks/webhook-sender.js'

export interface WebhooksOptions {
  /** Names this instance's consumer and lease holder; unique per start by default. */
  consumerName?: string
  /** Overrides of the deliverer's timings (tests shorten the backoff and the lease). */
  timings?: { retryMinMs?: number; retryMaxMs?: number; horizonMs?: number; leaseMs?: number; waitMs?: number; timeoutMs?: number }
}

/**
 * Presence webhooks (CAT_WEBHOOK_URL): joins and leaves POSTed from the event log, by the one
 * instance that holds the site's webhook lease. Off when the URL is unset (and then the
 * webhooks' consumer group is removed: every instance of a site has the same setting). Closed before the
 * shared state, whose log and lease it uses.
 */
export const webhooksPlugin = fp<WebhooksOptions>(async (app, { consumerName, timings = {} }) => {
  const webhook = app.config.webhook
  if (webhook === undefined) {
    // Off: a group left from when they were on would keep every entry in the streams.
    await app.eventLog.removeGroup(WEBHOOK_GROUP)
    return
  }
  const name = `${consumerName ?? `cat-${process.pid}-${randomBytes(3).toString('hex')}`}-webhooks`
  const source = await app.eventLog.consumer(name, { group: WEBHOOK_GROUP })
  const sender = createWebhookSender({ url: webhook.url, secret: webhook.secret, timeoutMs: timings.timeoutMs })
  const { metrics } = app
  const deliverer = createWebhookDeliverer({
    source,
    lease: app.webhookLease(name),
    send: (batch) => sender.send(batch),
    log: app.log,
    now: app.now,
    debounceMs: webhook.debounceMs,
    ...timings,
    onDelivered: (count) => metrics.webhookDelivered.inc(count),
    onDropped: (count) => metrics.webhookDropped.inc(count),
    onFailed: () => metrics.webhookFailures.inc(),
  })
  app.addHook('onClose', async () => {
    await deliverer.stop()
    await sender.close()
  })
  deliverer.start()
}, { name: 'webhooks', dependencies: ['shared-state', 'metrics'] })
