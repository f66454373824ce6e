import fp from 'fastify-plugin'
import { createConsentService, type ConsentService } from '../consent/consent-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    consent: ConsentService
  }
}

/** The contacts' consent decisions: recorded in the database, announced to every instance on the bus. */
export const consentPlugin = fp(async (app) => {
  const consent = createConsentService({ store: app.activity, engine: app.presence, bus: app.consentBus, grants: app.clientContacts.grants })
  app.addHook('onClose', async () => consent.close())
  app.decorate('consent', consent)
}, { name: 'consent', dependencies: ['core', 'database', 'shared-state'] })
