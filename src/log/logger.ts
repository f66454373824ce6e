import type { FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'

/**
 * Keeps the first 24 bits of an IPv4 address and the first 48 of an IPv6 one: enough to tell
 * networks apart, not enough to name a person (GDPR). Used for logs and, later, stored rows.
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
        'config.databaseUrl',
        'redisUrl',
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
