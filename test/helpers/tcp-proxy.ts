import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** Refuses new connections and cuts the open ones: the service looks stopped. */
  stop(): Promise<void>
  /** Accepts connections again on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

/** A TCP proxy on 127.0.0.1 in front of a real service, to take it away and bring it back. */
export async function createTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0

  const listen = async (): Promise<void> => {
    const current = createServer((client) => {
      const upstream = connect(targetPort, targetHost)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      current.once('error', reject)
      current.listen(port, '127.0.0.1', () => resolve())
    })
    server = current
    port = (current.address() as { port: number }).port
  }

  const stop = async (): Promise<void> => {
    const current = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (current !== undefined) await new Promise<void>((resolve) => current.close(() => resolve()))
  }

  await listen()
  return {
    get port() {
      return port
    },
    stop,
    start: listen,
    close: stop,
  }
}
