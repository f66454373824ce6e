import { readFileSync } from 'node:fs'
import t from 'tap'
import SwaggerParser from '@apidevtools/swagger-parser'
import type { RouteOptions } from 'fastify'
import { buildTestApp } from '../helpers/app.js'
import { ERRORS, type ErrorCode } from '../../src/errors/errors.js'

interface Schema {
  type?: string
  enum?: unknown[]
  properties?: Record<string, Schema>
}
interface Operation {
  parameters?: { in: string; name: string; required?: boolean }[]
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>
  security?: Record<string, string[]>[]
}
interface Document {
  openapi: string
  info: { title: string; version: string }
  paths: Record<string, Record<string, Operation>>
}
interface Route {
  method: string
  url: string
}

/** Every route as Fastify registers it, one per method, without the HEAD routes it adds to GETs. */
function collector(): { routes: Route[]; onRoute(route: RouteOptions): void } {
  const routes: Route[] = []
  return {
    routes,
    onRoute(route) {
      const methods = typeof route.method === 'string' ? [route.method] : route.method
      for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: route.url })
    },
  }
}

/** The OpenAPI path of a Fastify URL: `/a/:id` is `/a/{id}`. */
const openapiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

/** The operation of a route in the document, or undefined. */
const operationOf = (doc: Document, route: Route): Operation | undefined => doc.paths[openapiPath(route.url)]?.[route.method.toLowerCase()]

/** The error codes a documented error response allows, or a reason it is not the error shape. */
function errorCodes(status: number, response: Operation['responses'][string]): ErrorCode[] | string {
  const schema = response.content?.['application/json']?.schema
  const error = schema?.properties?.error
  const codes = error?.properties?.code?.enum
  if (schema?.type !== 'object' || error?.type !== 'object' || error.properties?.message?.type !== 'string' || !Array.isArray(codes) || codes.length === 0) {
    return 'not {"error":{"code","message"}}'
  }
  for (const code of codes) {
    if (typeof code !== 'string' || !(code in ERRORS)) return `unknown code ${String(code)}`
    if (ERRORS[code as ErrorCode].status !== status) return `${code} is a ${ERRORS[code as ErrorCode].status}`
  }
  return codes as ErrorCode[]
}

/** What is wrong with the document's description of `routes`: nothing, or a line per defect. */
function defects(doc: Document, routes: readonly Route[]): string[] {
  const found: string[] = []
  for (const route of routes) {
    const name = `${route.method} ${route.url}`
    const operation = operationOf(doc, route)
    if (operation === undefined) {
      found.push(`${name}: not in the document`)
      continue
    }
    for (const [, param] of openapiPath(route.url).matchAll(/\{([^}]+)\}/g)) {
      if (!(operation.parameters ?? []).some((p) => p.in === 'path' && p.name === param && p.required === true)) found.push(`${name}: path parameter ${param} not described`)
    }
    const statuses = Object.keys(operation.responses).map(Number)
    if (!statuses.some((status) => status >= 100 && status < 300)) found.push(`${name}: no 1xx or 2xx response`)
    if (!statuses.some((status) => status >= 400)) found.push(`${name}: no error response`)
    for (const status of statuses.filter((s) => s >= 400)) {
      const codes = errorCodes(status, operation.responses[String(status)] ?? {})
      if (typeof codes === 'string') found.push(`${name}: its ${status} is ${codes}`)
    }
  }
  const served = new Set(routes.map((route) => `${route.method.toLowerCase()} ${openapiPath(route.url)}`))
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) if (!served.has(`${method} ${path}`)) found.push(`${method.toUpperCase()} ${path}: described but not served`)
  }
  return found
}

t.test('GET /docs/openapi.json is a valid OpenAPI 3.1 document that describes every route the app serves', async (t) => {
  const { routes, onRoute } = collector()
  const app = await buildTestApp(t, { onRoute })
  const res = await app.inject('/docs/openapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json<Document>()

  // The validator dereferences the document in place: it gets a copy.
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'valid against the OpenAPI 3.1 schema')
  t.equal(doc.openapi, '3.1.0')
  t.equal(doc.info.version, (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version)

  // The routes of the default test configuration, so a route that stops being registered is noticed too.
  const names = routes.map((route) => `${route.method} ${route.url}`)
  for (const expected of ['GET /admin/ws', 'GET /metrics', 'GET /demo', 'POST /cat_heartbeat', 'DELETE /admin/api/contacts/:contactId', 'GET /docs/openapi.json']) {
    t.ok(names.includes(expected), `${expected} is registered`)
  }
  t.ok(routes.length >= 18, `${routes.length} routes registered`)
  t.same(defects(doc, routes), [], 'each route described with its path parameters, a success response and the error shape')

  t.same(operationOf(doc, { method: 'GET', url: '/admin/api/online' })?.security, [{ adminBearer: [] }], 'the admin API takes a bearer token')
  t.same(operationOf(doc, { method: 'GET', url: '/metrics' })?.security, [{ metricsToken: [] }, {}], '/metrics: CAT_METRICS_TOKEN, or none on loopback')
  t.ok(operationOf(doc, { method: 'GET', url: '/admin/ws' })?.responses['101'], 'the WebSocket upgrade answers 101')
  t.ok(operationOf(doc, { method: 'GET', url: '/cat_heartbeat' })?.responses['204'], 'a heartbeat answers 204')
})

t.test('each route answers a bare request (no token, no parameters) with a status its description names', async (t) => {
  const { routes, onRoute } = collector()
  const app = await buildTestApp(t, { onRoute })
  const doc = (await app.inject('/docs/openapi.json')).json<Document>()
  for (const route of routes) {
    const res = await app.inject({ method: route.method as 'GET', url: route.url.replace(/:([A-Za-z0-9_]+)/g, 'x') })
    const response = operationOf(doc, route)?.responses[String(res.statusCode)]
    t.ok(response, `${route.method} ${route.url} answered ${res.statusCode}, which is described`)
    if (response === undefined || res.statusCode < 400) continue
    const codes = errorCodes(res.statusCode, response)
    t.ok(Array.isArray(codes) && codes.includes(res.json<{ error: { code: ErrorCode } }>().error.code), `${route.method} ${route.url}: ${res.body} is one of its documented errors`)
  }
})

t.test('the check fails on a route that is not described, or described without the error shape', async (t) => {
  const { routes, onRoute } = collector()
  const app = await buildTestApp(t, { onRoute })
  const doc = (await app.inject('/docs/openapi.json')).json<Document>()

  const missing = structuredClone(doc)
  delete missing.paths['/admin/api/contacts/{contactId}/export']
  t.same(defects(missing, routes), ['GET /admin/api/contacts/:contactId/export: not in the document'])

  const wrongMethod = structuredClone(doc)
  const erase = wrongMethod.paths['/admin/api/contacts/{contactId}']
  if (erase?.delete !== undefined) {
    erase.post = erase.delete
    delete erase.delete
  }
  t.same(defects(wrongMethod, routes), ['DELETE /admin/api/contacts/:contactId: not in the document', 'POST /admin/api/contacts/{contactId}: described but not served'])

  const noErrorShape = structuredClone(doc)
  const online = noErrorShape.paths['/admin/api/online']?.get
  if (online !== undefined) online.responses['401'] = {}
  t.same(defects(noErrorShape, routes), ['GET /admin/api/online: its 401 is not {"error":{"code","message"}}'])

  const noParam = structuredClone(doc)
  const activity = noParam.paths['/admin/api/clients/{clientId}/activity']?.get
  if (activity !== undefined) activity.parameters = activity.parameters?.filter((p) => p.in !== 'path')
  t.same(defects(noParam, routes), ['GET /admin/api/clients/:clientId/activity: path parameter clientId not described'])
})
