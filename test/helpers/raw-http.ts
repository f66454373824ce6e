import { connect, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  /** The body of the first response on the connection. */
  body: string
  /** Everything the server sent, as text. */
  raw: string
}

/** Listens on an ephemeral port (once) and returns it. */
export async function listenPort(app: FastifyInstance): Promise<number> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return address.port
}

/** Splits the first HTTP/1.1 response out of what a socket received. */
export function parseResponse(raw: string): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n')
  if (headEnd < 0) throw new Error(`no complete response head in ${JSON.stringify(raw.slice(0, 200))}`)
  const [statusLine = '', ...lines] = raw.slice(0, headEnd).split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
  const rest = raw.slice(headEnd + 4)
  // The socket reads latin1 (one character a byte), so Content-Length counts characters here.
  return { status, headers, body: Buffer.from(length === undefined ? rest : rest.slice(0, length), 'latin1').toString('utf8'), raw }
}

/** A raw TCP connection to the app, collecting what the server sends until it closes. */
export interface RawConnection {
  socket: Socket
  /** Resolves with everything received once the server has closed the connection. */
  closed: Promise<string>
  /** Resolves once `count` complete responses (by Content-Length) have arrived. */
  responses(count: number): Promise<RawResponse[]>
}

export async function rawConnect(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1')
  socket.setEncoding('latin1')
  let received = ''
  const waiters = new Set<() => void>()
  socket.on('data', (chunk: string) => {
    received += chunk
    for (const wake of waiters) wake()
  })
  // A reset (the server destroying the socket while we still write) ends the connection too.
  socket.on('error', () => undefined)
  const closed = new Promise<string>((resolve) => socket.on('close', () => {
    resolve(received)
    for (const wake of waiters) wake()
  }))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return {
    socket,
    closed,
    responses(count) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found: RawResponse[] = []
          let rest = received
          while (found.length < count && rest.includes('\r\n\r\n')) {
            const response = parseResponse(rest)
            const headLength = rest.indexOf('\r\n\r\n') + 4
            const bodyLength = Number(response.headers['content-length'] ?? 0)
            if (rest.length < headLength + bodyLength) break
            found.push(response)
            rest = rest.slice(headLength + bodyLength)
          }
          if (found.length >= count) {
            waiters.delete(check)
            resolve(found)
          } else if (socket.closed) {
            waiters.delete(check)
            reject(new Error(`connection closed after ${found.length} of ${count} responses: ${JSON.stringify(received.slice(0, 300))}`))
          }
        }
        waiters.add(check)
        check()
      })
    },
  }
}

/** Sends `request` on a fresh connection and returns the server's first response. */
export async function rawRequest(port: number, request: string | Buffer): Promise<RawResponse> {
  const connection = await rawConnect(port)
  connection.socket.write(request)
  const [response] = await connection.responses(1)
  connection.socket.destroy()
  if (response === undefined) throw new Error('no response')
  return response
}
