import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { createTokenVerifier, type TokenVerifier } from '../auth/tokens.js'
import { ClientContacts } from '../auth/client-contacts.js'
import { findProjectRoot } from '../activity/database.js'
import { loadSnippetAssets, type SnippetAssets } from '../snippet/snippet-assets.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    now: () => number
    tokens: TokenVerifier
    /** The client contacts seen: their verified tokens, claims and known consent. */
    clientContacts: ClientContacts
    snippet: SnippetAssets
    /** True once the app is closing (SIGTERM or close()): readiness fails and new dashboards are refused. */
    draining: boolean
  }
}

export interface CoreOptions {
  config: Config
  /** The clock; tests inject one to move time without sleeping. */
  now: () => number
}

/**
 * What every other plugin reads: the configuration, the clock, the token verifier and the
 * snippet with its language files. Registered first, before any connection is opened, so a
 * broken language file stops the start with nothing to close.
 */
export const corePlugin = fp<CoreOptions>(async (app, { config, now }) => {
  const snippet = loadSnippetAssets({ root: findProjectRoot(), overrideDir: config.langDir })
  app.decorate('config', config)
  app.decorate('now', now)
  // A contact seen within two presence timeouts keeps its tokens: a tab that beats at all is
  // never asked for an HMAC again.
  const clientContacts = new ClientContacts({ now, keepIdleMs: 2 * config.presenceTimeoutS * 1000 })
  app.decorate('clientContacts', clientContacts)
  app.decorate('tokens', createTokenVerifier({ secrets: config.secrets, now, clients: clientContacts }))
  app.decorate('snippet', snippet)
  app.decorate('draining', false)
  // However the app is closed, dashboards are refused from here on and readiness fails.
  app.addHook('preClose', (done) => {
    app.draining = true
    done()
  })
}, { name: 'core' })
