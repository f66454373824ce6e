import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import { registerErrorHandler } from '../errors/error-handler.js'
import { guardRequests } from '../errors/edge-errors.js'

/**
 * What every request meets before its route: the error handler (routes registered after it
 * use it), the guard at the HTTP layer (closing, missing Host), and CORS for listed origins.
 */
export interface HttpEdgeOptions {
  /** ms the requests in flight have to finish once the app closes; busy connections are cut then. */
  drainMs: number
}

export const httpEdgePlugin = fp<HttpEdgeOptions>(async (app, { drainMs }) => {
  registerErrorHandler(app)
  guardRequests(app, drainMs)
  // Only cross-origin callers need CORS headers, and those must be listed; a browser never
  // checks them on a same-origin request. With none listed the plugin is not registered: its
  // hook would run on every heartbeat to add nothing. Static options: the plugin prepares them
  // once, where a delegator would copy and normalise them on every heartbeat.
  if (app.config.allowedOrigins.length > 0) {
    await app.register(cors, {
      origin: [...app.config.allowedOrigins],
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['CAT-Interval', 'Retry-After'],
      maxAge: 600,
    })
  }
}, { name: 'http-edge', dependencies: ['core'] })
