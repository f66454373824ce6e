import t from 'tap'
import { AUDIENCES, createTokenVerifier } from '../src/auth/tokens.js'
import { runTs, type RunResult } from './helpers/run-ts.js'

const CLI_SECRET = 'cli-secret-0123456789abcdef'
const OLD_SECRET = 'cli-old-secret-9876543210'

/** Runs the CLI as a user would, with exactly the given CAT_SECRET (or none). */
function cli(args: string[], secret: string | undefined): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.CAT_SECRET
  if (secret !== undefined) env.CAT_SECRET = secret
  return runTs('src/cli.ts', args, env)
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

t.test('mints a client token that the server verifies', async (t) => {
  const before = Math.floor(Date.now() / 1000)
  const { code, stdout, stderr } = await cli(['token', '--aud', 'client', '--sub', '5', '--client-id', '9', '--ttl', '2h'], CLI_SECRET)
  const after = Math.ceil(Date.now() / 1000)
  t.equal(code, 0, stderr)
  t.equal(stderr, '')
  const token = stdout.trim()
  t.match(token, JWT, 'one JWT on stdout')
  t.equal(stdout, `${token}\n`, 'nothing else on stdout')
  const claims = createTokenVerifier({ secrets: [CLI_SECRET], now: Date.now }).verify(token, AUDIENCES.client)
  t.equal(claims.aud, 'cat:client')
  t.equal(claims.sub, '5')
  t.equal(claims.clientId, '9')
  t.ok(claims.exp >= before + 7200 && claims.exp <= after + 7200, `exp ${claims.exp} is now + 2 h`)
  t.throws(() => createTokenVerifier({ secrets: [CLI_SECRET], now: Date.now }).verify(token, AUDIENCES.admin), { code: 'invalid_token' }, 'not an admin token')
})

t.test('mints an admin token, signed with the first of several secrets', async (t) => {
  const before = Math.floor(Date.now() / 1000)
  const { code, stdout, stderr } = await cli(['token', '--aud', 'admin', '--sub', 'staff-3', '--name', 'Eve Admin'], `${CLI_SECRET},${OLD_SECRET}`)
  const after = Math.ceil(Date.now() / 1000)
  t.equal(code, 0, stderr)
  const token = stdout.trim()
  t.match(token, JWT)
  const claims = createTokenVerifier({ secrets: [CLI_SECRET], now: Date.now }).verify(token, AUDIENCES.admin)
  t.equal(claims.aud, 'cat:admin')
  t.equal(claims.sub, 'staff-3')
  t.equal(claims.name, 'Eve Admin')
  t.equal(claims.clientId, undefined)
  t.ok(claims.exp >= before + 3600 && claims.exp <= after + 3600, `exp ${claims.exp} is now + 1 h by default`)
  t.throws(() => createTokenVerifier({ secrets: [OLD_SECRET], now: Date.now }).verify(token, AUDIENCES.admin), { code: 'invalid_token' }, 'not signed with the second secret')
})

t.test('mints an admin token that sees only the clients of --clients', async (t) => {
  const { code, stdout, stderr } = await cli(['token', '--aud', 'admin', '--sub', 'staff-4', '--role', 'staff', '--clients', '12, 40,7'], CLI_SECRET)
  t.equal(code, 0, stderr)
  const claims = createTokenVerifier({ secrets: [CLI_SECRET], now: Date.now }).verify(stdout.trim(), AUDIENCES.admin)
  t.equal(claims.role, 'staff')
  t.same([...(claims.visibility?.clients ?? [])].sort(), ['12', '40', '7'])
  t.ok(claims.visibility?.sees('40') === true && claims.visibility.sees('41') === false, 'sees 40, not 41')
  const none = await cli(['token', '--aud', 'admin', '--sub', 'staff-5', '--clients', ''], CLI_SECRET)
  t.equal(createTokenVerifier({ secrets: [CLI_SECRET], now: Date.now }).verify(none.stdout.trim(), AUDIENCES.admin).visibility?.clients?.size, 0, '--clients "": no client')
})

t.test('failures exit non-zero with a clear message on stderr', async (t) => {
  const cases: [string, string[], string | undefined, RegExp][] = [
    ['missing CAT_SECRET', ['token', '--aud', 'admin', '--sub', '1'], undefined, /CAT_SECRET/],
    ['--aud other', ['token', '--aud', 'other', '--sub', '1'], CLI_SECRET, /--aud/],
    ['missing --sub', ['token', '--aud', 'admin'], CLI_SECRET, /--sub/],
    ['client without --client-id', ['token', '--aud', 'client', '--sub', '1'], CLI_SECRET, /--client-id/],
    ['bad --ttl', ['token', '--aud', 'admin', '--sub', '1', '--ttl', 'soon'], CLI_SECRET, /--ttl/],
    ['--clients on a client token', ['token', '--aud', 'client', '--sub', '1', '--client-id', '2', '--clients', '2'], CLI_SECRET, /--clients is for an admin token/],
    ['unknown option', ['token', '--aud', 'admin', '--sub', '1', '--bogus'], CLI_SECRET, /bogus/],
    ['unknown command', ['mint', '--aud', 'admin', '--sub', '1'], CLI_SECRET, /unknown command "mint"/],
  ]
  const results = await Promise.all(cases.map(([, args, secret]) => cli(args, secret)))
  for (const [i, [label, , , message]] of cases.entries()) {
    const { code, stdout, stderr } = results[i] as RunResult
    t.not(code, 0, `${label}: exits non-zero`)
    t.match(stderr, message, `${label}: says why`)
    t.match(stderr, /usage: cat-presence token/, `${label}: shows the usage`)
    t.equal(stdout, '', `${label}: prints no token`)
    t.notMatch(stderr, /eyJ[A-Za-z0-9_-]*\./, `${label}: no token on stderr`)
  }
})

t.test('a short secret is refused without being printed', async (t) => {
  const { code, stdout, stderr } = await cli(['token', '--aud', 'admin', '--sub', '1'], 'shortPw123')
  t.not(code, 0)
  t.match(stderr, /^CAT_SECRET:/)
  t.notOk(stderr.includes('shortPw123'), 'the secret is not echoed')
  t.equal(stdout, '')
})
