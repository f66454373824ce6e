import { readFileSync } from 'node:fs'
import t from 'tap'
import { CLOSE_CODES, ERRORS } from '../../src/errors/errors.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('every error code is documented in the README with its status', async (t) => {
  for (const [code, { status }] of Object.entries(ERRORS)) {
    t.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} → ${status}`)
  }
})

t.test('every WebSocket close code is documented with what a dashboard should do', async (t) => {
  for (const { code } of Object.values(CLOSE_CODES)) {
    t.match(readme, new RegExp(`\\| ${code} \\| [^|]+ \\| [^|]+ \\|`), String(code))
  }
})
