/**
 * The one error catalogue: every code a client can see, its HTTP status and
 * the message used when none more precise is given. The README's error table is checked
 * against this list by test/errors/errors.test.ts.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is malformed.' },
  invalid_token: { status: 401, message: 'The token is missing, malformed, expired or not valid here.' },
  consent_required: { status: 403, message: 'The contact has not granted consent to tracking.' },
  license_required: { status: 402, message: 'The licence of this install is not active; activate it in the dashboard settings.' },
  forbidden: { status: 403, message: 'This origin or token may not do this.' },
  demo_mode: { status: 403, message: 'This server runs in demo mode: the staff side is read-only.' },
  not_found: { status: 404, message: 'No such resource.' },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  too_large: { status: 413, message: 'The request is too large.' },
  uri_too_long: { status: 414, message: 'The URL is too long.' },
  rate_limited: { status: 429, message: 'Too many requests; retry after the time in Retry-After.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  internal_error: { status: 500, message: 'An internal error occurred.' },
  unavailable: { status: 503, message: 'A backing service is unavailable; retry after the time in Retry-After.' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

/** An error meant for the client: the handler renders it as `{"error":{"code","message"}}`. */
export class AppError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /** Seconds, sent as Retry-After with 429 and 503. */
  readonly retryAfterS: number | undefined

  constructor(code: ErrorCode, message?: string, options?: { retryAfterS?: number; cause?: unknown }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.statusCode = ERRORS[code].status
    this.retryAfterS = options?.retryAfterS
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string }
}

export function errorBody(code: ErrorCode, message?: string): ErrorBody {
  return { error: { code, message: message ?? ERRORS[code].message } }
}

/**
 * WebSocket close codes the server uses, with what a dashboard should do on each
 * (RFC 6455 §7.4 and the IANA registry).
 */
export const CLOSE_CODES = {
  /** The server is shutting down or draining: reconnect at once, another instance will answer. */
  serviceRestart: { code: 1012, reason: 'service restart', reconnect: 'immediately' },
  /** The socket could not keep up with the diff feed: reconnect with backoff and take a new snapshot. */
  tryAgainLater: { code: 1013, reason: 'send buffer full', reconnect: 'with backoff' },
  /** The client sent something that is not a known message: fix the client; do not retry blindly. */
  policyViolation: { code: 1008, reason: 'unknown message', reconnect: 'after fixing the client' },
  /** A snapshot failed in the middle of its message (the presence store went away): reconnect with backoff. */
  snapshotInterrupted: { code: 1011, reason: 'snapshot interrupted', reconnect: 'with backoff' },
  /** The licence stopped serving the staff side (docs/licensing.md): reconnecting gets 402 license_required until it is active again. */
  licenseRequired: { code: 4402, reason: 'license required', reconnect: 'with backoff; the upgrade answers 402 until the licence is active' },
  /** The client's message was larger than allowed. */
  messageTooBig: { code: 1009, reason: 'message too big', reconnect: 'after fixing the client' },
} as const
