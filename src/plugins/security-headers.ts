import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet'

/** `'sha256-…'` of an inline script, for a CSP's script-src. */
export const scriptHash = (script: string): string => `'sha256-${createHash('sha256').update(script).digest('base64')}'`

/**
 * The security headers of a page of this server (/admin, /demo), by @fastify/helmet: a CSP that
 * allows scripts from this server and the page's own inline scripts by hash, styles from this
 * server and inline (the widget's shadow DOM and the consent banner style themselves), network
 * requests and images to this server only, no plugins, no base or form targets, no framing;
 * `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff` and helmet's other defaults.
 */
export function pageHeaders(inlineScripts: readonly string[]): FastifyHelmetOptions {
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'", ...inlineScripts.map(scriptHash)],
        styleSrc: ["'self'", "'unsafe-inline'"],
        connectSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  }
}

/**
 * The headers of the embeddable widget's script: `X-Content-Type-Options: nosniff` and the
 * rest of helmet's, but loadable from another product's page (Cross-Origin-Resource-Policy:
 * cross-origin) and without a CSP, which a script does not use.
 */
export const WIDGET_HEADERS: FastifyHelmetOptions = {
  contentSecurityPolicy: false,
  crossOriginResourcePolicy: { policy: 'cross-origin' },
  referrerPolicy: { policy: 'no-referrer' },
}

/**
 * @fastify/helmet, on no route unless the route asks (its `helmet` option). Registered in the
 * contexts of the routes that ask (dashboard.ts, snippet.ts), not the app's: helmet adds two
 * onRequest hooks, one async, to every route of its context, and the heartbeat, the snippet
 * and the APIs keep only the headers they need without paying for them.
 */
export const securityHeadersPlugin = fp(async (app) => {
  await app.register(helmet, { global: false })
}, { name: 'security-headers' })
