import t from 'tap'
import { buildApp } from '../../src/app.js'
import { AppError } from '../../src/errors/errors.js'
import { testConfig } from '../helpers/app.js'
import { createTestDataDir } from '../helpers/database.js'

t.test('every 429 and 503 carries Retry-After, named by the error or the default', async (t) => {
  const app = await buildApp(testConfig({ CAT_DATA_DIR: createTestDataDir(t, 'handler') }), { sweepIntervalMs: 0, activityLoops: false })
  t.teardown(() => app.close())
  const errors: Record<string, () => Error> = {
    'unavailable, no Retry-After named': () => new AppError('unavailable'),
    'rate_limited, no Retry-After named': () => new AppError('rate_limited'),
    'unavailable, Retry-After 2': () => new AppError('unavailable', undefined, { retryAfterS: 2 }),
    'a plain error with status 503': () => Object.assign(new Error('down'), { statusCode: 503 }),
  }
  for (const [index, make] of Object.values(errors).entries()) {
    app.get(`/fail/${index}`, async () => {
      throw make()
    })
  }
  await app.ready()
  const expected = [['unavailable', 503, '5'], ['rate_limited', 429, '5'], ['unavailable', 503, '2'], ['unavailable', 503, '5']] as const
  for (const [index, label] of Object.keys(errors).entries()) {
    const [code, status, retryAfter] = expected[index] ?? []
    const res = await app.inject(`/fail/${index}`)
    t.equal(res.statusCode, status, `${label}: ${status}`)
    t.equal(res.headers['retry-after'], retryAfter, `${label}: Retry-After ${retryAfter}`)
    t.match(res.json(), { error: { code, message: String } }, `${label}: ${code}`)
  }
})

t.test('statuses without a code of their own map onto the catalogue', async (t) => {
  const app = await buildApp(testConfig({ CAT_DATA_DIR: createTestDataDir(t, 'handler') }), { sweepIntervalMs: 0, activityLoops: false })
  t.teardown(() => app.close())
  const cases = [[405, 400, 'invalid_request'], [408, 408, 'request_timeout'], [414, 414, 'uri_too_long'], [431, 431, 'headers_too_large']] as const
  for (const [thrown] of cases) {
    app.get(`/status/${thrown}`, async () => {
      throw Object.assign(new Error(`status ${thrown}`), { statusCode: thrown })
    })
  }
  await app.ready()
  for (const [thrown, status, code] of cases) {
    const res = await app.inject(`/status/${thrown}`)
    t.equal(res.statusCode, status, `${thrown} → ${status}`)
    t.match(res.json(), { error: { code } }, `${thrown} → ${code}`)
  }
})
