import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../metrics/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** What GET /metrics reports; counts nothing with CAT_METRICS=off. */
    metrics: Metrics
  }
}

/** The instruments, made before the plugins that count into them (routes/metrics.ts serves them). */
export const metricsPlugin = fp(async (app) => {
  app.decorate('metrics', createMetrics(app.config.metrics))
}, { name: 'metrics', dependencies: ['core'] })
