import { request, type Dispatcher } from 'undici'
import type { SignedLease } from './lease.js'

/** The licence server's answer: a signed lease (whatever its status), or why there is none. */
export type ActivationAnswer =
  | { kind: 'lease'; signed: SignedLease }
  | { kind: 'unreachable'; reason: string }

export interface ActivationRequest {
  serverUrl: string
  key: string
  domain: string
  instanceId: string
  timeoutMs: number
  /** The connection pool; the licence manager's own, closed with the app. */
  dispatcher: Dispatcher
}

/**
 * The most of an answer read, in bytes: a signed lease is a few hundred. A larger answer is
 * not the licence server's word (it would be stored for every instance and re-read by each):
 * it is `unreachable`, read no further.
 */
export const MAX_ANSWER_BYTES = 64 * 1024

/** The body as text, or undefined once it passes MAX_ANSWER_BYTES (the rest is not read). */
async function boundedText(response: Dispatcher.ResponseData): Promise<string | undefined> {
  if (Number(response.headers['content-length']) > MAX_ANSWER_BYTES) {
    response.body.destroy()
    return undefined
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      response.body.destroy()
      return undefined
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * POST {serverUrl}/v1/activate {key, domain, instanceId}. Any answer carrying a lease and a
 * signature is the server's word, whatever its HTTP status (an unknown key is a signed 404);
 * no answer, another body, a body over MAX_ANSWER_BYTES or a 5xx is `unreachable`. The key travels in the body only, never
 * in a URL, and no reason names it.
 */
export async function requestLease({ serverUrl, key, domain, instanceId, timeoutMs, dispatcher }: ActivationRequest): Promise<ActivationAnswer> {
  try {
    const response = await request(`${serverUrl}/v1/activate`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ key, domain, instanceId }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await boundedText(response)
    if (text === undefined) return { kind: 'unreachable', reason: `the licence server answered ${response.statusCode} with more than ${MAX_ANSWER_BYTES} bytes` }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return { kind: 'unreachable', reason: `the licence server answered ${response.statusCode} without JSON` }
    }
    const { lease, signature } = (body ?? {}) as Partial<SignedLease>
    if (typeof lease === 'string' && typeof signature === 'string') return { kind: 'lease', signed: { lease, signature } }
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message
    return { kind: 'unreachable', reason: `the licence server answered ${response.statusCode}${typeof message === 'string' ? `: ${message.slice(0, 200)}` : ''}` }
  } catch (error) {
    const err = error as { code?: string; name?: string; message?: string }
    const reason = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : (err.code ?? err.message ?? 'connection failed')
    return { kind: 'unreachable', reason: `${reason} (${new URL(serverUrl).host})` }
  }
}
