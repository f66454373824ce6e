import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { AppError, errorBody, type ErrorCode } from './errors.js'

/** ms between the lines that count the 503s while they go on. */
const UNAVAILABLE_REPORT_MS = 10_000

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'invalid_token',
  403: 'forbidden',
  404: 'not_found',
  405: 'invalid_request',
  406: 'invalid_request',
  408: 'request_timeout',
  411: 'invalid_request',
  413: 'too_large',
  414: 'uri_too_long',
  415: 'invalid_request',
  429: 'rate_limited',
  431: 'headers_too_large',
  503: 'unavailable',
}

/** Retry-After, in seconds, of a 429 or 503 that names none: every one carries it, so a client always knows when to retry. */
const DEFAULT_RETRY_AFTER_S = 5

function send(reply: FastifyReply, code: ErrorCode, status: number, message?: string, retryAfterS?: number): void {
  const retryAfter = retryAfterS ?? (status === 429 || status === 503 ? DEFAULT_RETRY_AFTER_S : undefined)
  if (retryAfter !== undefined) reply.header('Retry-After', String(retryAfter))
  void reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message))
}

/** An error in one line: its message, and its cause's. */
function describe(error: Error): string {
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause === undefined ? error.message : `${error.message} (${cause})`
}

interface UnavailableLog {
  /** A request was answered 503. */
  note(error: Error): void
  close(): void
}

/**
 * An outage answers thousands of requests 503 in seconds, all for one reason: the log gets
 * the first with its reason (no stack: it is the backing service, not this code), then every
 * `everyMs` how many there were, and one line when a whole period passed without any.
 */
function createUnavailableLog(log: FastifyBaseLogger, everyMs: number): UnavailableLog {
  let count = 0
  let timer: NodeJS.Timeout | undefined
  const report = (): void => {
    if (count === 0) {
      clearInterval(timer)
      timer = undefined
      log.info({ periodMs: everyMs }, 'no request answered 503 unavailable in the last period')
      return
    }
    log.warn({ count, periodMs: everyMs }, 'requests answered 503 unavailable in the last period')
    count = 0
  }
  return {
    note(error) {
      if (timer !== undefined) {
        count += 1
        return
      }
      log.warn({ reason: describe(error) }, 'answering 503 unavailable')
      count = 1
      timer = setInterval(report, everyMs)
      timer.unref()
    },
    close() {
      clearInterval(timer)
      timer = undefined
    },
  }
}

/**
 * @fastify/websocket's handler for an error on an open dashboard socket. A client's malformed
 * frame (a bad opcode, invalid UTF-8, a frame too big) or a connection cut is the client's
 * affair, logged at debug only; anything else is ours. The socket is dropped either way.
 */
export function webSocketErrorHandler(error: Error, socket: WebSocket, request: FastifyRequest): void {
  const code = (error as { code?: unknown }).code
  const clients = typeof code === 'string' && (code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE')
  if (clients) request.log.debug({ reason: error.message, code }, 'dashboard socket error; dropped')
  else request.log.error({ err: error }, 'dashboard socket failed; dropped')
  socket.terminate()
}

/**
 * One error handler: every error becomes `{"error":{"code","message"}}`. Client errors keep
 * their message; 503s are counted (createUnavailableLog); anything else is logged and answered
 * without details.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  const unavailable = createUnavailableLog(app.log, UNAVAILABLE_REPORT_MS)
  app.addHook('onClose', async () => unavailable.close())
  app.setErrorHandler((error: FastifyError | AppError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof AppError) {
      if (error.code === 'unavailable') unavailable.note(error)
      else if (error.statusCode >= 500) request.log.warn({ err: error.cause ?? error, code: error.code }, error.message)
      send(reply, error.code, error.statusCode, error.message, error.retryAfterS)
      return
    }
    if ('validation' in error && error.validation !== undefined) {
      send(reply, 'invalid_request', 400, `${error.validationContext ?? 'request'}${error.message.replace(/^(querystring|body|params|headers)/, '')}`)
      return
    }
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500
    const code = BY_STATUS[status]
    if (status >= 400 && status < 500) {
      const mapped = code ?? 'invalid_request'
      send(reply, mapped, mapped === 'invalid_request' ? 400 : status, error.message)
      return
    }
    if (status === 503) {
      unavailable.note(error)
      send(reply, 'unavailable', 503, undefined, 5)
      return
    }
    request.log.error({ err: error }, 'request failed')
    send(reply, 'internal_error', 500)
  })

  app.setNotFoundHandler((request, reply) => {
    send(reply, 'not_found', 404, `No route for ${request.method} ${request.url.split('?')[0]}`)
  })
}
