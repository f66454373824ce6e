import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** A file served as is: its bytes, their gzip, and a strong ETag of the bytes. */
export interface StaticAsset {
  body: Buffer
  gzip: Buffer
  etag: string
}

export function createStaticAsset(body: Buffer | string): StaticAsset {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body)
  const hash = createHash('sha256').update(bytes).digest('base64url').slice(0, 22)
  return { body: bytes, gzip: gzipSync(bytes, { level: 9 }), etag: `"${hash}"` }
}

/**
 * Sends a JavaScript asset: gzip when accepted (its own ETag, so caches keep the two apart),
 * 304 on a matching If-None-Match, cacheable for five minutes. `headers` adds to or replaces
 * the defaults (Vary among them).
 */
export function sendJavaScriptAsset(request: FastifyRequest, reply: FastifyReply, asset: StaticAsset, headers: Record<string, string> = {}): FastifyReply {
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))
  const etag = gzip ? `${asset.etag.slice(0, -1)}-gz"` : asset.etag
  void reply.headers({
    'Content-Type': 'application/javascript; charset=utf-8',
    'Cache-Control': 'public, max-age=300',
    Vary: 'Accept-Encoding',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
    ETag: etag,
  })
  const match = request.headers['if-none-match']
  if (match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) return reply.code(304).send()
  if (gzip) return reply.header('Content-Encoding', 'gzip').send(asset.gzip)
  return reply.send(asset.body)
}
