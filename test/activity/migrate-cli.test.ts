import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { createConnection } from 'mysql2/promise'
import { createTestMysqlDatabase } from '../helpers/database.js'

const run = promisify(execFile)

async function migrate(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { NODE_OPTIONS: _ignored, ...base } = process.env
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/activity/migrate-cli.ts'], { env: { ...base, ...env }, timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

t.test('npm run migrate creates the tables of a MySQL database, and says so in one line', async (t) => {
  const url = await createTestMysqlDatabase(t, 'cli')
  const result = await migrate({ DATABASE_URL: url })
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /^migrated mysql database/)
  const connection = await createConnection({ uri: url })
  t.teardown(() => connection.end())
  const [rows] = await connection.query("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'cat\\_%'")
  t.equal((rows as { n: number }[])[0]?.n, 7)
})

t.test('a database that cannot be reached fails with exit 1 and no password in the message', async (t) => {
  const result = await migrate({ DATABASE_URL: 'mysql://cat:SuperSecretPw1@127.0.0.1:1/cat' })
  t.equal(result.code, 1)
  t.ok(result.stderr.length > 0, 'says why')
  t.notOk(`${result.stdout}${result.stderr}`.includes('SuperSecretPw1'))
})

t.test('a bad DATABASE_URL is refused by the configuration check', async (t) => {
  const result = await migrate({ DATABASE_URL: 'postgres://x/y' })
  t.equal(result.code, 1)
  t.match(result.stderr, /^DATABASE_URL:/)
})
