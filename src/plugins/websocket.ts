import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import { webSocketErrorHandler } from '../errors/error-handler.js'
import { lacksHost, rawErrorResponse } from '../errors/edge-errors.js'
import { CLOSE_CODES } from '../errors/errors.js'
import { adminWsRoutes } from '../routes/admin-ws.js'

const DASHBOARD_PATH = '/admin/ws'

/**
 * The WebSocket plugin hands every upgrade request to the router, and its hooks, which close
 * the socket of one that ends as plain HTTP, run only in its scope. An upgrade to any other
 * path is answered 404 here and its socket closed, as the plugin would have.
 */
function onlyUpgradesTo(app: FastifyInstance, path: string): void {
  const server = app.server
  const plugin = server.listeners('upgrade') as ((request: IncomingMessage, socket: Duplex, head: Buffer) => void)[]
  server.removeAllListeners('upgrade')
  const notFound = rawErrorResponse('not_found', `Only ${path} takes a WebSocket upgrade.`)
  const noHost = rawErrorResponse('invalid_request', 'The Host header is missing.')
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node checks Host on plain requests only (guardRequests answers those).
    const refusal = lacksHost(request) ? noHost : (request.url ?? '').split('?')[0] === path ? undefined : notFound
    if (refusal === undefined) {
      for (const listener of plugin) listener.call(server, request, socket, head)
      return
    }
    socket.on('error', () => socket.destroy())
    socket.end(refusal)
  }
  server.on('upgrade', onUpgrade)
  app.addHook('onClose', async () => {
    server.removeListener('upgrade', onUpgrade)
  })
}

/**
 * The dashboards' WebSocket, /admin/ws, with the WebSocket plugin in a scope of their own: the
 * plugin's hooks and route wrapper run on that route only, not on every heartbeat.
 */
export const adminWebSocketPlugin = fp(async (app) => {
  await app.register(async (scope) => {
    await scope.register(websocket, {
      options: { maxPayload: 4096 },
      errorHandler: webSocketErrorHandler,
      // Before the server closes, dashboards are closed with 1012 (service restart) so they
      // reconnect to another instance at once; the plugin's default would close them without a code.
      preClose(done) {
        scope.hub.close(CLOSE_CODES.serviceRestart.code, CLOSE_CODES.serviceRestart.reason)
        for (const client of scope.websocketServer.clients) client.close(CLOSE_CODES.serviceRestart.code, CLOSE_CODES.serviceRestart.reason)
        scope.websocketServer.close(() => done())
      },
    })
    onlyUpgradesTo(scope, DASHBOARD_PATH)
    await scope.register(adminWsRoutes)
  })
}, { name: 'admin-websocket', dependencies: ['hub', 'http-edge'] })
