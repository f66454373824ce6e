import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERRORS, errorBody, type ErrorCode } from './errors.js'

/**
 * Answers given before or outside Fastify's request lifecycle, where the error handler never
 * runs: errors of Node's HTTP parser (`clientError`), of the router (`frameworkErrors`), a
 * request without `Host`, and requests that arrive while the server closes. Each is the
 * catalogue's `{"error":{"code","message"}}`, as every other error is.
 */

/** Seconds a client waits before retrying on an instance that is closing. */
export const CLOSING_RETRY_AFTER_S = 1

const JSON_TYPE = 'application/json; charset=utf-8'

/** A whole HTTP/1.1 error response, for a socket the HTTP layer has given up on; the connection closes. */
export function rawErrorResponse(code: ErrorCode, message?: string, status: number = ERRORS[code].status): string {
  const body = JSON.stringify(errorBody(code, message))
  const reason = STATUS_TEXT[status] ?? 'Error'
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
}

/** What Node's parser reports, by `error.code`, as the catalogue's code and message. */
function clientErrorAnswer(code: string | undefined): [ErrorCode, string] {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['request_timeout', 'The request was not received in time.']
    case 'HPE_HEADER_OVERFLOW':
      return ['headers_too_large', 'The request line and headers are larger than 16 KiB.']
    default:
      return ['invalid_request', 'The request is not valid HTTP/1.1.']
  }
}

interface ConnectionError extends Error {
  code?: string
}

/**
 * Fastify's `clientErrorHandler`: a request the parser refused (malformed, headers too large)
 * or one that did not arrive within the headers or request timeout. As Node does by default,
 * the answer is written only when no response on this socket has begun, and the socket is then
 * destroyed. Logged at debug and by code only: the error's raw packet may hold a token.
 */
export function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  this.log.debug({ code: error.code }, 'client error')
  // _httpMessage is the response in flight on this socket, if any (Node's own check).
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (socket.writable && (inFlight === undefined || inFlight === null || !inFlight.headersSent)) {
    const [code, message] = clientErrorAnswer(error.code)
    socket.write(rawErrorResponse(code, message))
  }
  socket.destroy(error)
}

/** Fastify's `frameworkErrors`: what the router refuses before any route or hook runs. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  let code: ErrorCode
  let message: string
  switch (error.code) {
    case 'FST_ERR_BAD_URL':
      code = 'invalid_request'
      message = 'The URL is not valid: a percent-encoded sequence is malformed.'
      break
    case 'FST_ERR_MAX_PARAM_LENGTH':
      code = 'uri_too_long'
      message = 'A path parameter of the URL is too long.'
      break
    default:
      code = 'internal_error'
      message = ERRORS.internal_error.message
  }
  void reply.code(ERRORS[code].status).type(JSON_TYPE).send(errorBody(code, message))
}

function answer(res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(errorBody(code, message))
  res.writeHead(ERRORS[code].status, { ...headers, Connection: 'close', 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

/** True for an HTTP/1.1 request without `Host` (RFC 9112 §3.2: answered 400). */
export function lacksHost(request: IncomingMessage): boolean {
  return request.headers.host === undefined && request.httpVersionMajor === 1 && request.httpVersionMinor === 1
}

/**
 * A lane: answers the requests it recognises below Fastify's router, and hands every other to
 * Fastify (returns false before it has done anything). `fastify` is Fastify's own request
 * handler, for a request the lane took and then passes on after all.
 */
export type HttpLane = (request: IncomingMessage, response: ServerResponse, fastify: (request: IncomingMessage, response: ServerResponse) => void) => boolean

declare module 'fastify' {
  interface FastifyInstance {
    /** Puts a lane (HttpLane) in front of Fastify's router, behind the closing and Host checks. */
    addHttpLane(lane: HttpLane): void
  }
}

/**
 * Puts two checks in front of Fastify's request handler, at the HTTP layer, so no hook runs on
 * every heartbeat for them: a request that arrives once the app is closing gets 503 with
 * `Retry-After` (Fastify's own closing answer has none; `return503OnClosing` is off), and an
 * HTTP/1.1 request without `Host` gets 400 (Node's own answer, off by `requireHostHeader:
 * false`, has no body). An `Expect` other than `100-continue` is ignored, as RFC 9110 allows,
 * rather than answered with Node's bare 417.
 *
 * Closing lets the requests in flight finish: their responses carry `Connection: close`, so
 * their connections end with them, and Node's server.close() ends the idle ones; a connection
 * that has sent nothing is closed at once. Connections still busy `drainMs` after closing began
 * are cut, so a hung request or a slow upload cannot hold the shutdown.
 *
 * Lanes added with `app.addHttpLane` run after those checks, before Fastify.
 */
export function guardRequests(app: FastifyInstance, drainMs: number): void {
  const server = app.server
  const handlers = server.listeners('request') as ((request: IncomingMessage, response: ServerResponse) => void)[]
  const [only] = handlers
  if (handlers.length !== 1 || only === undefined) throw new Error(`expected one request listener, found ${handlers.length}`)
  server.removeAllListeners('request')
  let closing = false
  const lanes: HttpLane[] = []
  const fastify = (request: IncomingMessage, response: ServerResponse): void => only.call(server, request, response)
  app.decorate('addHttpLane', (lane: HttpLane) => {
    lanes.push(lane)
  })
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    if (closing) {
      answer(response, 'unavailable', 'This instance is shutting down; retry, another instance will answer.', { 'Retry-After': String(CLOSING_RETRY_AFTER_S) })
      return
    }
    if (lacksHost(request)) {
      answer(response, 'invalid_request', 'The Host header is missing.')
      return
    }
    for (let i = 0; i < lanes.length; i += 1) if ((lanes[i] as HttpLane)(request, response, fastify)) return
    fastify(request, response)
  }
  server.on('request', onRequest)
  server.on('checkExpectation', onRequest)
  const open = new Set<Duplex>()
  server.on('connection', (socket: Duplex) => {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
  })
  let cut: NodeJS.Timeout | undefined
  // preClose runs after Fastify stops routing and before connections and resources close:
  // until then requests are served as usual.
  app.addHook('preClose', (done) => {
    closing = true
    for (const socket of open) {
      // _httpMessage is the response in flight on this socket, if any (Node's own field).
      const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
      if (inFlight === undefined || inFlight === null) {
        // One that has sent nothing holds no request, but is not idle to Node's close (which
        // ends kept-alive connections between requests): it would hold the close for drainMs.
        if ((socket as Duplex & { bytesRead?: number }).bytesRead === 0) socket.destroy()
        continue
      }
      if (!inFlight.headersSent) inFlight.setHeader('Connection', 'close')
      else inFlight.once('finish', () => socket.end())
    }
    cut = setTimeout(() => server.closeAllConnections(), drainMs)
    cut.unref()
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    clearTimeout(cut)
    done()
  })
}
