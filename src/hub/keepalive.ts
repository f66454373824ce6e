import type { Connection } from './connection.js'

/**
 * Pings every socket each `intervalMs`; one that did not answer the previous ping is dropped
 * and terminated. Returns the function that stops it. The timer does not keep the process up.
 */
export function startKeepalive(connections: Iterable<Connection>, intervalMs: number, drop: (conn: Connection) => void): () => void {
  const timer = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        drop(conn)
        conn.socket.terminate()
        continue
      }
      conn.alive = false
      conn.socket.ping()
    }
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
