import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'

/**
 * Keeps the first 24 bits of an IPv4 address and the first 48 of an IPv6 one: enough to tell
 * networks apart, not enough to name a person (GDPR). Used for logs and the consent ledger.
 */
export function truncateIp(ip: string | undefined): string {
  if (ip === undefined || ip === '') return ''
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/i.exec(ip)
  if (v4 !== null) return `${v4[1]}.${v4[2]}.${v4[3]}.0`
  if (ip.includes(':')) {
    const [head = '', tail] = ip.split('::')
    const groups = head === '' ? [] : head.split(':')
    const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
    const full = tail === undefined ? groups : [...groups, ...Array(Math.max(0, 8 - groups.length - tailGroups.length)).fill('0'), ...tailGroups]
    return `${full.slice(0, 3).map((g) => g || '0').join(':')}::`
  }
  return ''
}

/**
 * What failed, as text: an error's message without its stack, anything else as it prints. A
 * log line's `reason` for a failure that is retried (a backing service away) says what failed,
 * not where.
 */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Removes credentials from a URL's query string before it is logged. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|access_token)=)[^&#]*/gi, '$1[redacted]')
}

/**
 * pino options shared by the server and the tests: tokens, secrets, cookies and full IP
 * addresses never reach a log line.
 */
export function loggerOptions(level: string, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return {
    level,
    ...(stream === undefined ? {} : { stream }),
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.query.token',
        'token',
        '*.token',
        'secret',
        '*.secret',
        'secrets',
        'config.secrets',
        'config.redisUrl',
        'config.redisClusterNodes',
        'config.databaseUrl',
        'redisUrl',
        'redisClusterNodes',
        'databaseUrl',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req(request: { method: string; url: string; ip?: string; headers?: Record<string, unknown> }) {
        return { method: request.method, url: redactUrl(request.url), remoteAddress: truncateIp(request.ip) }
      },
      res(reply: { statusCode: number }) {
        return { statusCode: reply.statusCode }
      },
    },
  }
}

type LogFn = (...args: unknown[]) => void
interface ChildCapable {
  level: string
  child(bindings: Record<string, unknown>, options?: object): ChildCapable
  fatal: LogFn
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  trace: LogFn
  silent: LogFn
}

/**
 * A request's logger, made into a pino child (with the request id) on its first use. Request
 * logging is off and a heartbeat that succeeds logs nothing, so the child that Fastify would
 * build for every request is mostly never used, and building it is a measurable part of a
 * heartbeat's CPU.
 */
class LazyChildLogger {
  // Plain properties, not #private ones: an instance is made for every request, and when
  // objects with #private fields are made this often V8 slows down every process.nextTick of
  // the process (the stream internals of each request use it): a large share of a bare route's time.
  private made: ChildCapable | undefined
  private readonly parent: ChildCapable
  private readonly bindings: Record<string, unknown>
  private readonly options: object

  constructor(parent: ChildCapable, bindings: Record<string, unknown>, options: object) {
    this.made = undefined
    this.parent = parent
    this.bindings = bindings
    this.options = options
  }

  private get real(): ChildCapable {
    this.made ??= this.parent.child(this.bindings, this.options)
    return this.made
  }

  get level(): string {
    return this.real.level
  }

  set level(level: string) {
    this.real.level = level
  }

  child(bindings: Record<string, unknown>, options?: object): ChildCapable {
    return this.real.child(bindings, options)
  }

  fatal(...args: unknown[]): void {
    this.real.fatal(...args)
  }

  error(...args: unknown[]): void {
    this.real.error(...args)
  }

  warn(...args: unknown[]): void {
    this.real.warn(...args)
  }

  info(...args: unknown[]): void {
    this.real.info(...args)
  }

  debug(...args: unknown[]): void {
    this.real.debug(...args)
  }

  trace(...args: unknown[]): void {
    this.real.trace(...args)
  }

  silent(): void {}
}

/** Fastify's `childLoggerFactory`: request loggers are made when first used. */
export function lazyChildLogger(logger: unknown, bindings: Record<string, unknown>, options: object): FastifyBaseLogger {
  return new LazyChildLogger(logger as ChildCapable, bindings, options) as unknown as FastifyBaseLogger
}
