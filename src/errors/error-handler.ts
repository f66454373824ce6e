import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, errorBody, type ErrorCode } from './errors.js'

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

/** Retry-After, in seconds, of a 429 or 503 that names none: every one carries it (CONTRACT §5). */
const DEFAULT_RETRY_AFTER_S = 5

function send(reply: FastifyReply, code: ErrorCode, status: number, message?: string, retryAfterS?: number): void {
  const retryAfter = retryAfterS ?? (status === 429 || status === 503 ? DEFAULT_RETRY_AFTER_S : undefined)
  if (retryAfter !== undefined) reply.header('Retry-After', String(retryAfter))
  void reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message))
}

/**
 * One error handler: every error becomes `{"error":{"code","message"}}`. Client errors keep
 * their message; anything else is logged and answered without details.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | AppError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof AppError) {
      if (error.statusCode >= 500) request.log.warn({ err: error.cause ?? error, code: error.code }, error.message)
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
