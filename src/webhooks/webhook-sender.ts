/**
 * POSTs a signed batch to CAT_WEBHOOK_URL through an undici Pool: a few kept-alive connections
 * to the one receiver, and a deadline on each attempt.
 */
import { Pool } from 'undici'
import type { WebhookBatch } from './webhook-event.js'
import { signWebhook } from './webhook-signature.js'

export type SendResult = { ok: true; status: number } | { ok: false; status?: number; error?: string }

export interface WebhookSender {
  send(batch: WebhookBatch): Promise<SendResult>
  close(): Promise<void>
}

export interface WebhookSenderOptions {
  url: string
  secret: string
  /** ms an attempt may take, connecting included, before it counts as failed (below two thirds of the deliverer's lease). */
  timeoutMs?: number
  /** Connections kept to the receiver; batches go one at a time, so few are needed. */
  connections?: number
}

export function createWebhookSender({ url, secret, timeoutMs = 5_000, connections = 2 }: WebhookSenderOptions): WebhookSender {
  const target = new URL(url)
  const pool = new Pool(target.origin, { connections, connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  const path = target.pathname + target.search
  return {
    async send(batch) {
      const body = JSON.stringify(batch)
      const signature = signWebhook(secret, body, Math.floor(batch.sentAt / 1000))
      try {
        const response = await pool.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', 'cat-signature': signature, 'user-agent': 'cat-presence-webhooks' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        })
        // The answer's body is not used; read to the end, the connection is reused.
        await response.body.dump()
        if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, status: response.statusCode }
        return { ok: false, status: response.statusCode }
      } catch (error) {
        // The error's code or name only: a message may repeat the URL, and its query may hold a token.
        const code = (error as { code?: string; name?: string }).code ?? (error as Error).name
        return { ok: false, error: code }
      }
    },
    async close() {
      await pool.close()
    },
  }
}
