import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'

export interface Message {
  type: 'snapshot' | 'diff'
  seq: number
  at: number
  online?: Record<string, unknown>[]
  joined?: Record<string, unknown>[]
  updated?: Record<string, unknown>[]
  left?: { contactId: string; at: number; reason: string }[]
}

export interface Dashboard {
  socket: WebSocket
  messages: Message[]
  /** Resolves with the first message (from `from` on) that matches; rejects after `timeoutMs`. */
  waitFor(match: (m: Message) => boolean, timeoutMs?: number, from?: number): Promise<Message>
  closed: Promise<{ code: number; reason: string }>
  close(): Promise<void>
}

/** Listens on an ephemeral port (once) and returns the base ws:// URL. */
export async function wsBase(app: FastifyInstance): Promise<string> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return `ws://127.0.0.1:${address.port}`
}

/** A real `ws` client on /admin/ws, collecting every message. */
export async function connectDashboard(app: FastifyInstance, token: string | undefined, headers: Record<string, string> = {}): Promise<Dashboard> {
  const base = await wsBase(app)
  const url = token === undefined ? `${base}/admin/ws` : `${base}/admin/ws?token=${encodeURIComponent(token)}`
  const socket = new WebSocket(url, { headers })
  const messages: Message[] = []
  const waiters = new Set<() => void>()
  socket.on('message', (data) => {
    messages.push(JSON.parse(data.toString()) as Message)
    for (const wake of waiters) wake()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
    socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })))
  })
  return {
    socket,
    messages,
    closed,
    waitFor(match, timeoutMs = 3000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = messages.slice(from).find(match)
          if (found === undefined) return false
          clearTimeout(timer)
          waiters.delete(wake)
          resolve(found)
          return true
        }
        const wake = (): void => void check()
        const timer = setTimeout(() => {
          waiters.delete(wake)
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`))
        }, timeoutMs)
        waiters.add(wake)
        check()
      })
    },
    async close() {
      if (socket.readyState === WebSocket.CLOSED) return
      socket.close()
      await closed
    },
  }
}

/** Refused before the upgrade: resolves with the HTTP status and JSON body. */
export async function refusedUpgrade(app: FastifyInstance, query: string, headers: Record<string, string> = {}, path = '/admin/ws'): Promise<{ status: number; body: unknown }> {
  const base = await wsBase(app)
  const socket = new WebSocket(`${base}${path}${query}`, { headers })
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.terminate()
      reject(new Error('upgrade was accepted'))
    })
    socket.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => {
        socket.terminate()
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) })
      })
    })
    socket.once('error', () => {})
  })
}
