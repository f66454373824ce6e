/**
 * The CAT-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with
 * CAT_WEBHOOK_SECRET. The time is signed with the body, so a receiver that refuses old `t`
 * refuses replays.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export const SIGNATURE_HEADER = 'cat-signature'

/** Receivers refuse a `t` further than this from their clock (seconds). */
export const SIGNATURE_TOLERANCE_S = 300

export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')
  return `t=${unixSeconds},v1=${mac}`
}

/** Whether a header signs this body with this secret, at a `t` within the tolerance of `nowSeconds`. */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceS = SIGNATURE_TOLERANCE_S): boolean {
  if (header === undefined) return false
  const parts = new Map<string, string>()
  for (const part of header.split(',')) {
    const at = part.indexOf('=')
    if (at > 0) parts.set(part.slice(0, at).trim(), part.slice(at + 1).trim())
  }
  const t = parts.get('t')
  const v1 = parts.get('v1')
  if (t === undefined || v1 === undefined || !/^\d{1,12}$/.test(t) || !/^[0-9a-f]{64}$/.test(v1)) return false
  if (Math.abs(nowSeconds - Number(t)) > toleranceS) return false
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest()
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'))
}
