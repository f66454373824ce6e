import { createHmac } from 'node:crypto'
import t, { type Test } from 'tap'
import { AppError } from '../../src/errors/errors.js'
import { ClientContacts } from '../../src/auth/client-contacts.js'
import { AUDIENCES, MAX_ADMIN_TOKEN_LENGTH, MAX_CLIENTS_CLAIM, MAX_TOKEN_LENGTH, createTokenVerifier, parseTtl, signToken, type Audience, type TokenVerifier } from '../../src/auth/tokens.js'

const NEW_SECRET = 'new-secret-0123456789abcdef'
const OLD_SECRET = 'old-secret-fedcba9876543210'
const T0 = 1_800_000_000_000
const T0_S = T0 / 1000

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/** Builds a token by hand, so headers and claims the minting code never writes can be tried. */
function handToken(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | null): string {
  const signingInput = `${b64(header)}.${b64(payload)}`
  const signature = secret === null ? '' : createHmac('sha256', secret).update(signingInput).digest('base64url')
  return `${signingInput}.${signature}`
}

function clientPayload(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { aud: 'cat:client', sub: 'contact-7', client_id: 'client-3', name: 'Ann Example', company: 'Acme Ltd', exp: T0_S + 3600, ...extra }
}

function verifier(secrets: readonly string[] = [NEW_SECRET], start = T0, cacheBytes?: number): { v: TokenVerifier; clock: { ms: number } } {
  const clock = { ms: start }
  return { v: createTokenVerifier({ secrets, now: () => clock.ms, cacheBytes }), clock }
}

/** Expects verify() to throw AppError invalid_token/401; returns its message. */
function refused(t: Test, v: TokenVerifier, token: string | undefined, audience: Audience, label: string): string {
  try {
    v.verify(token, audience)
  } catch (error) {
    t.ok(error instanceof AppError, `${label}: an AppError`)
    const appError = error as AppError
    t.equal(appError.code, 'invalid_token', `${label}: code invalid_token`)
    t.equal(appError.statusCode, 401, `${label}: status 401`)
    t.ok(appError.message.length > 0, `${label}: with a message`)
    return appError.message
  }
  t.fail(`${label}: was accepted`)
  return ''
}

t.test('a valid client token gives its claims', async (t) => {
  const { v } = verifier()
  const token = handToken({ alg: 'HS256', typ: 'JWT' }, clientPayload(), NEW_SECRET)
  const claims = v.verify(token, AUDIENCES.client)
  t.same(claims, { aud: 'cat:client', sub: 'contact-7', clientId: 'client-3', name: 'Ann Example', company: 'Acme Ltd', exp: T0_S + 3600 })
})

t.test('a valid admin token gives its claims', async (t) => {
  const { v } = verifier()
  const token = signToken({ aud: 'admin', sub: 'staff-2', name: 'Bob', ttlS: 600 }, [NEW_SECRET], T0)
  const claims = v.verify(token, AUDIENCES.admin)
  t.equal(claims.aud, 'cat:admin')
  t.equal(claims.sub, 'staff-2')
  t.equal(claims.name, 'Bob')
  t.equal(claims.clientId, undefined)
  t.equal(claims.exp, T0_S + 600)
})

t.test('the role claim of an admin token: admin when absent, staff when it says so, anything else refused', async (t) => {
  const { v } = verifier()
  t.equal(v.verify(signToken({ aud: 'admin', sub: 's1', ttlS: 600 }, [NEW_SECRET], T0), AUDIENCES.admin).role, 'admin', 'absent: admin')
  t.equal(v.verify(signToken({ aud: 'admin', sub: 's2', role: 'admin', ttlS: 600 }, [NEW_SECRET], T0), AUDIENCES.admin).role, 'admin')
  t.equal(v.verify(signToken({ aud: 'admin', sub: 's3', role: 'staff', ttlS: 600 }, [NEW_SECRET], T0), AUDIENCES.admin).role, 'staff')
  for (const role of ['owner', 'ADMIN', 1, true, ['admin']]) {
    const token = handToken({ alg: 'HS256', typ: 'JWT' }, { aud: 'cat:admin', sub: 's4', exp: T0_S + 600, role }, NEW_SECRET)
    t.match(refused(t, v, token, AUDIENCES.admin, `role ${JSON.stringify(role)}`), /role/, 'the message names the claim')
  }
  const client = v.verify(handToken({ alg: 'HS256', typ: 'JWT' }, clientPayload(), NEW_SECRET), AUDIENCES.client)
  t.equal(client.role, undefined, 'a client token has no role')
})

t.test('numeric sub and client_id are accepted as strings', async (t) => {
  const { v } = verifier()
  const token = handToken({ alg: 'HS256' }, clientPayload({ sub: 5, client_id: 9 }), NEW_SECRET)
  const claims = v.verify(token, AUDIENCES.client)
  t.equal(claims.sub, '5')
  t.equal(claims.clientId, '9')
  const admin = handToken({ alg: 'HS256' }, { aud: 'cat:admin', sub: 12, exp: T0_S + 60 }, NEW_SECRET)
  t.equal(v.verify(admin, AUDIENCES.admin).sub, '12')
})

t.test('a token of the wrong audience is refused both ways', async (t) => {
  const { v } = verifier()
  const client = signToken({ aud: 'client', sub: '1', clientId: '2', ttlS: 600 }, [NEW_SECRET], T0)
  const admin = signToken({ aud: 'admin', sub: '1', ttlS: 600 }, [NEW_SECRET], T0)
  t.match(refused(t, v, client, AUDIENCES.admin, 'client token as admin'), /audience/)
  t.match(refused(t, v, admin, AUDIENCES.client, 'admin token as client'), /audience/)
  // Each is still good where it belongs, so the refusals above are about the audience only.
  t.equal(v.verify(client, AUDIENCES.client).sub, '1')
  t.equal(v.verify(admin, AUDIENCES.admin).sub, '1')
  const noAud = handToken({ alg: 'HS256' }, clientPayload({ aud: undefined }), NEW_SECRET)
  refused(t, v, noAud, AUDIENCES.client, 'no aud')
  const otherAud = handToken({ alg: 'HS256' }, clientPayload({ aud: 'someone-else' }), NEW_SECRET)
  refused(t, v, otherAud, AUDIENCES.client, 'foreign aud')
})

t.test('expiry, with 30 s of clock skew', async (t) => {
  const exp = T0_S + 60
  const token = handToken({ alg: 'HS256' }, clientPayload({ exp }), NEW_SECRET)

  t.equal(verifier([NEW_SECRET], (exp + 1) * 1000).v.verify(token, AUDIENCES.client).sub, 'contact-7', '1 s after exp: skew allows')
  t.equal(verifier([NEW_SECRET], (exp + 30) * 1000).v.verify(token, AUDIENCES.client).sub, 'contact-7', '30 s after exp: skew allows')
  t.match(refused(t, verifier([NEW_SECRET], (exp + 31) * 1000).v, token, AUDIENCES.client, '31 s after exp'), /expired/)
  t.match(refused(t, verifier([NEW_SECRET], (exp + 86400) * 1000).v, token, AUDIENCES.client, 'a day after exp'), /expired/)
})

t.test('a token issued (iat) further in the future than the 30 s skew is refused', async (t) => {
  const { v, clock } = verifier()
  const ahead60 = handToken({ alg: 'HS256' }, clientPayload({ sub: 'ahead-60', iat: T0_S + 60 }), NEW_SECRET)
  const ahead10 = handToken({ alg: 'HS256' }, clientPayload({ sub: 'ahead-10', iat: T0_S + 10 }), NEW_SECRET)
  const ahead30 = handToken({ alg: 'HS256' }, clientPayload({ sub: 'ahead-30', iat: T0_S + 30 }), NEW_SECRET)
  t.match(refused(t, v, ahead60, AUDIENCES.client, 'iat = now + 60 s'), /issued in the future/)
  t.equal(v.verify(ahead10, AUDIENCES.client).sub, 'ahead-10', 'iat = now + 10 s: within the skew')
  t.equal(v.verify(ahead30, AUDIENCES.client).sub, 'ahead-30', 'iat = now + 30 s: at the skew')
  clock.ms = T0 + 30_000
  t.equal(v.verify(ahead60, AUDIENCES.client).sub, 'ahead-60', 'accepted once the clock is within the skew of its iat')
  clock.ms = T0
  t.match(refused(t, v, ahead60, AUDIENCES.client, 'the cached token, the clock back'), /issued in the future/)
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ iat: 'soon' }), NEW_SECRET), AUDIENCES.client, 'iat not a number')
})

t.test('a token without exp is refused', async (t) => {
  const { v } = verifier()
  t.match(refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ exp: undefined }), NEW_SECRET), AUDIENCES.client, 'no exp'), /exp/)
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ exp: String(T0_S + 60) }), NEW_SECRET), AUDIENCES.client, 'exp as a string')
})

t.test('a bad signature is refused', async (t) => {
  const { v } = verifier()
  const token = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 600 }, [NEW_SECRET], T0)
  const [header = '', payload = '', signature = ''] = token.split('.')
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1', 'the untampered token is good')

  const forgedPayload = b64({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'contact-2' })
  t.match(refused(t, v, `${header}.${forgedPayload}.${signature}`, AUDIENCES.client, 'tampered payload'), /signature/)

  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
  t.match(refused(t, v, `${header}.${payload}.${flipped}`, AUDIENCES.client, 'tampered signature'), /signature/)
  refused(t, v, `${header}.${payload}.`, AUDIENCES.client, 'signature removed')
  refused(t, v, `${header}.${payload}.${signature.slice(0, 20)}`, AUDIENCES.client, 'signature truncated')
  refused(t, v, signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 600 }, ['another-secret-0123456789'], T0), AUDIENCES.client, 'signed with another secret')
})

t.test('only the canonical spelling of a good signature is accepted', async (t) => {
  const { v } = verifier()
  const token = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 600 }, [NEW_SECRET], T0)
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1')
  // 32 bytes take 43 base64url characters; the last one carries 2 unused bits.
  const last = token.charCodeAt(token.length - 1)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const index = alphabet.indexOf(String.fromCharCode(last))
  const sameBits = alphabet[index ^ 1] ?? ''
  refused(t, v, `${token.slice(0, -1)}${sameBits}`, AUDIENCES.client, 'unused bits of the last character changed')
  refused(t, v, `${token}=`, AUDIENCES.client, 'padding added')
  refused(t, v, `${token}!!`, AUDIENCES.client, 'characters outside base64url appended')
})

t.test('only HS256 is allowed', async (t) => {
  const { v } = verifier()
  const none = handToken({ alg: 'none', typ: 'JWT' }, clientPayload(), null)
  t.ok(none.endsWith('.'), 'an alg:none token has an empty signature')
  t.match(refused(t, v, none, AUDIENCES.client, 'alg none'), /algorithm/)
  refused(t, v, handToken({ alg: 'None' }, clientPayload(), null), AUDIENCES.client, 'alg None')
  refused(t, v, handToken({}, clientPayload(), NEW_SECRET), AUDIENCES.client, 'no alg')

  // HS512 signed for real with the right secret: refused for the algorithm, not the signature.
  const signingInput = `${b64({ alg: 'HS512' })}.${b64(clientPayload())}`
  const hs512 = `${signingInput}.${createHmac('sha512', NEW_SECRET).update(signingInput).digest('base64url')}`
  t.match(refused(t, v, hs512, AUDIENCES.client, 'alg HS512'), /algorithm/)
  // Signed with HS256 but claiming HS512 or RS256: still refused.
  t.match(refused(t, v, handToken({ alg: 'HS512' }, clientPayload(), NEW_SECRET), AUDIENCES.client, 'HS256 signature, alg HS512'), /algorithm/)
  t.match(refused(t, v, handToken({ alg: 'RS256' }, clientPayload(), NEW_SECRET), AUDIENCES.client, 'alg RS256'), /algorithm/)
})

t.test('key rotation: the first secret signs, all verify, kid picks one', async (t) => {
  const { v } = verifier([NEW_SECRET, OLD_SECRET])
  const payload = clientPayload()

  t.equal(v.verify(handToken({ alg: 'HS256', kid: '1' }, payload, OLD_SECRET), AUDIENCES.client).sub, 'contact-7', 'old secret, kid 1')
  t.equal(v.verify(handToken({ alg: 'HS256', kid: '0' }, payload, NEW_SECRET), AUDIENCES.client).sub, 'contact-7', 'new secret, kid 0')
  t.equal(v.verify(handToken({ alg: 'HS256' }, payload, OLD_SECRET), AUDIENCES.client).sub, 'contact-7', 'old secret, no kid')
  t.equal(v.verify(handToken({ alg: 'HS256' }, payload, NEW_SECRET), AUDIENCES.client).sub, 'contact-7', 'new secret, no kid')

  t.match(refused(t, v, handToken({ alg: 'HS256', kid: '0' }, payload, OLD_SECRET), AUDIENCES.client, 'old secret, kid 0'), /signature/)
  refused(t, v, handToken({ alg: 'HS256', kid: '1' }, payload, NEW_SECRET), AUDIENCES.client, 'new secret, kid 1')
  t.match(refused(t, v, handToken({ alg: 'HS256', kid: '7' }, payload, OLD_SECRET), AUDIENCES.client, 'kid 7'), /kid/)
  t.match(refused(t, v, handToken({ alg: 'HS256', kid: 'abc' }, payload, OLD_SECRET), AUDIENCES.client, 'kid abc'), /kid/)
  t.match(refused(t, v, handToken({ alg: 'HS256', kid: '01' }, payload, OLD_SECRET), AUDIENCES.client, 'kid 01'), /kid/)
  refused(t, v, handToken({ alg: 'HS256', kid: 1 }, payload, OLD_SECRET), AUDIENCES.client, 'kid as a number')
  refused(t, v, handToken({ alg: 'HS256', kid: '-1' }, payload, OLD_SECRET), AUDIENCES.client, 'kid -1')

  // signToken uses secrets[0] and says so with kid "0".
  const minted = signToken({ aud: 'client', sub: 's', clientId: 'c', ttlS: 60 }, [NEW_SECRET, OLD_SECRET], T0)
  const header = JSON.parse(Buffer.from(minted.split('.')[0] ?? '', 'base64url').toString())
  t.same(header, { alg: 'HS256', typ: 'JWT', kid: '0' })
  t.equal(verifier([NEW_SECRET]).v.verify(minted, AUDIENCES.client).sub, 's', 'verifies with the first secret alone')
  refused(t, verifier([OLD_SECRET]).v, minted, AUDIENCES.client, 'not signed with the second secret')
  t.throws(() => signToken({ aud: 'admin', sub: 's', ttlS: 60 }, [], T0), 'no secret, no token')
})

t.test('signToken writes the claims the verifier reads', async (t) => {
  const token = signToken({ aud: 'client', sub: 'p1', clientId: 'c1', name: 'N', company: 'C', ttlS: 90 }, [NEW_SECRET], T0)
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
  t.same(payload, { aud: 'cat:client', sub: 'p1', client_id: 'c1', name: 'N', company: 'C', iat: T0_S, exp: T0_S + 90 })
})

t.test('the cache never outlives exp', async (t) => {
  const { v, clock } = verifier()
  const token = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 60 }, [NEW_SECRET], T0)
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1', 'verified at t0')
  clock.ms = T0 + (60 + 30) * 1000
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1', 'still good at exp + 30 s')
  clock.ms = T0 + (60 + 31) * 1000
  t.match(refused(t, v, token, AUDIENCES.client, 'cached token past exp + 30 s'), /expired/)
  t.match(refused(t, v, token, AUDIENCES.client, 'and again'), /expired/)
})

t.test('recall gives the claims of a token verified before and unexpired, and never verifies one', async (t) => {
  for (const store of ['the byte-bounded cache', 'ClientContacts'] as const) {
    const clock = { ms: T0 }
    const clients = store === 'ClientContacts' ? new ClientContacts({ now: () => clock.ms, keepIdleMs: 3_600_000 }) : undefined
    const v = createTokenVerifier({ secrets: [NEW_SECRET], now: () => clock.ms, clients })
    const token = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 60 }, [NEW_SECRET], T0)
    t.equal(v.recall(token, AUDIENCES.client), undefined, `${store}: a good token never verified is not recalled`)
    t.equal(v.recall(token, AUDIENCES.client), undefined, `${store}: nor verified by recalling it`)
    const claims = v.verify(token, AUDIENCES.client)
    t.same(v.recall(token, AUDIENCES.client), claims, `${store}: once verified, its claims`)
    t.equal(v.recall(token, AUDIENCES.admin), undefined, `${store}: not for another audience`)
    t.equal(v.recall(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, AUDIENCES.client), undefined, `${store}: not a token one character off`)
    t.equal(v.recall('', AUDIENCES.client), undefined, `${store}: not the empty token`)
    t.equal(v.recall('x'.repeat(MAX_TOKEN_LENGTH + 1), AUDIENCES.client), undefined, `${store}: not one over the length limit`)
    clock.ms = T0 + (60 + 31) * 1000
    t.equal(v.recall(token, AUDIENCES.client), undefined, `${store}: not once expired (past the 30 s skew)`)
  }
})

t.test('the cache does not remember the audience it was verified for', async (t) => {
  const { v } = verifier()
  const client = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 60 }, [NEW_SECRET], T0)
  t.equal(v.verify(client, AUDIENCES.client).sub, 'contact-1')
  refused(t, v, client, AUDIENCES.admin, 'cached client token as admin')
})

t.test('the cache is bounded in bytes, oldest first, and stays correct', async (t) => {
  const mint = (sub: string, name = 'N'): string => signToken({ aud: 'client', sub, clientId: `client-${sub}`, name, ttlS: 60 }, [NEW_SECRET], T0)
  const probe = verifier()
  probe.v.verify(mint('a0'), AUDIENCES.client)
  const perEntry = probe.v.cacheUsage().bytes
  t.ok(perEntry > mint('a0').length, `an entry counts its token and more (${perEntry} bytes)`)

  // Room for three entries of this size, not four.
  const cap = perEntry * 3 + perEntry / 2
  const { v, clock } = verifier([NEW_SECRET], T0, cap)
  const subs = ['a0', 'a1', 'a2', 'a3', 'a4']
  const tokens = subs.map((sub) => mint(sub))
  for (const [i, token] of tokens.entries()) {
    t.equal(v.verify(token, AUDIENCES.client).sub, subs[i])
    t.ok(v.cacheUsage().bytes <= cap, `after ${i + 1} tokens: ${v.cacheUsage().bytes} bytes kept, cap ${cap}`)
  }
  t.same(v.cacheUsage(), { entries: 3, bytes: perEntry * 3 }, 'the newest three are kept')

  // A long token takes the room of several short ones: the oldest give way for it. Its name is
  // cut to 200 characters.
  const long = mint('b0', 'L'.repeat(500))
  const longBytes = verifier().v
  longBytes.verify(long, AUDIENCES.client)
  const longSize = longBytes.cacheUsage().bytes
  t.ok(longSize > perEntry * 1.5, `a long token's entry is bigger (${longSize} bytes)`)
  t.equal(v.verify(long, AUDIENCES.client).name, 'L'.repeat(200))
  t.ok(v.cacheUsage().bytes <= cap, `${v.cacheUsage().bytes} bytes kept after the long token`)
  t.ok(v.cacheUsage().entries < 3, `${v.cacheUsage().entries} entries: fewer, since the long token counts for more`)

  const tiny = verifier([NEW_SECRET], T0, perEntry - 1)
  t.equal(tiny.v.verify(tokens[0] ?? '', AUDIENCES.client).sub, 'a0', 'a token over the whole cap still verifies')
  t.same(tiny.v.cacheUsage(), { entries: 0, bytes: 0 }, 'and is not kept')

  t.same(v.verify(tokens[0] ?? '', AUDIENCES.client), { aud: 'cat:client', sub: 'a0', clientId: 'client-a0', name: 'N', company: undefined, exp: T0_S + 60 }, 'an evicted token verifies again')
  clock.ms = T0 + 91_000
  for (const [i, token] of [...tokens, long].entries()) refused(t, v, token, AUDIENCES.client, `token ${i} expired after eviction churn`)
})

t.test('garbage is refused with a message', async (t) => {
  const { v } = verifier()
  const good = signToken({ aud: 'client', sub: 'contact-1', clientId: 'client-1', ttlS: 60 }, [NEW_SECRET], T0)
  const [header = '', payload = '', signature = ''] = good.split('.')
  t.match(refused(t, v, undefined, AUDIENCES.client, 'undefined'), /missing/)
  t.match(refused(t, v, '', AUDIENCES.client, 'empty'), /missing/)
  t.match(refused(t, v, 'not-a-token', AUDIENCES.client, 'one part'), /JWT/)
  t.match(refused(t, v, `${header}.${payload}`, AUDIENCES.client, 'two parts'), /JWT/)
  t.match(refused(t, v, `${good}.${signature}`, AUDIENCES.client, 'four parts'), /JWT/)
  t.match(refused(t, v, `.${payload}.${signature}`, AUDIENCES.client, 'empty header'), /JWT/)
  t.match(refused(t, v, `!!!.${payload}.${signature}`, AUDIENCES.client, 'header not base64'), /JWT/)
  t.match(refused(t, v, `${b64('{"alg":')}.${payload}.${signature}`, AUDIENCES.client, 'header not JSON'), /JWT/)
  t.match(refused(t, v, `${b64('["HS256"]')}.${payload}.${signature}`, AUDIENCES.client, 'header an array'), /JWT/)
  t.match(refused(t, v, `${b64('null')}.${payload}.${signature}`, AUDIENCES.client, 'header null'), /JWT/)
  // A signed payload that is not JSON: the signature is right, the claims are unreadable.
  const signingInput = `${header}.${b64('not json')}`
  const signedGarbage = `${signingInput}.${createHmac('sha256', NEW_SECRET).update(signingInput).digest('base64url')}`
  t.match(refused(t, v, signedGarbage, AUDIENCES.client, 'payload not JSON'), /JWT/)

  const long = handToken({ alg: 'HS256' }, clientPayload({ name: 'x'.repeat(MAX_TOKEN_LENGTH) }), NEW_SECRET)
  t.ok(long.length > MAX_TOKEN_LENGTH)
  t.match(refused(t, v, long, AUDIENCES.client, 'longer than 4096'), /longer/)
  t.equal(MAX_TOKEN_LENGTH, 4096)
})

t.test('bad claims are refused', async (t) => {
  const { v } = verifier()
  const noClient = signToken({ aud: 'client', sub: 'contact-1', ttlS: 60 }, [NEW_SECRET], T0)
  t.match(refused(t, v, noClient, AUDIENCES.client, 'client token without client_id'), /client_id/)
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ sub: undefined }), NEW_SECRET), AUDIENCES.client, 'no sub')
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ sub: '' }), NEW_SECRET), AUDIENCES.client, 'empty sub')
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ sub: 1.5 }), NEW_SECRET), AUDIENCES.client, 'fractional sub')
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ sub: 'a\nb' }), NEW_SECRET), AUDIENCES.client, 'control character in sub')
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ client_id: { id: 1 } }), NEW_SECRET), AUDIENCES.client, 'object client_id')
  refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ name: 42 }), NEW_SECRET), AUDIENCES.client, 'numeric name')
})

t.test('parseTtl', async (t) => {
  t.equal(parseTtl('90'), 90)
  t.equal(parseTtl('30s'), 30)
  t.equal(parseTtl('15m'), 900)
  t.equal(parseTtl('1h'), 3600)
  t.equal(parseTtl('2h'), 7200)
  t.equal(parseTtl('7d'), 604800)
  for (const bad of ['abc', '0', '0h', '1w', '', '-5', '1.5h', 'h']) {
    t.throws(() => parseTtl(bad), { message: /^--ttl: / }, `${JSON.stringify(bad)} is refused`)
  }
})

t.test('the clients claim of an admin token: the clients it sees', async (t) => {
  const { v } = verifier()
  const admin = (extra: Record<string, unknown>): string => handToken({ alg: 'HS256' }, { aud: 'cat:admin', sub: 'staff-1', exp: T0_S + 3600, ...extra }, NEW_SECRET)
  const all = v.verify(admin({}), AUDIENCES.admin).visibility
  t.ok(all?.all === true && all.sees('anything'), 'no claim: every client')
  const some = v.verify(admin({ clients: [12, '40', 'acme'] }), AUDIENCES.admin).visibility
  t.same([...(some?.clients ?? [])].sort(), ['12', '40', 'acme'], 'integers are read as ids, as client_id is')
  t.ok(some?.sees('12') === true && some.sees('13') === false, 'sees those listed only')
  t.equal(v.verify(admin({ clients: [] }), AUDIENCES.admin).visibility?.sees('12'), false, 'an empty list sees nobody')
  t.equal(v.verify(admin({ clients: ['acme', '12', '40'], name: 'other token' }), AUDIENCES.admin).visibility?.key, some?.key, 'the same clients in another order: the same key')
  t.not(v.verify(admin({ clients: ['12', '40'] }), AUDIENCES.admin).visibility?.key, some?.key, 'other clients: another key')
  t.match(refused(t, v, admin({ clients: 'acme' }), AUDIENCES.admin, 'not an array'), /clients must be an array/)
  t.match(refused(t, v, admin({ clients: ['ok', ''] }), AUDIENCES.admin, 'an empty id'), /clients/)
  t.match(refused(t, v, admin({ clients: ['ok', { id: 1 }] }), AUDIENCES.admin, 'an object'), /clients/)
  t.match(refused(t, v, admin({ clients: Array.from({ length: MAX_CLIENTS_CLAIM + 1 }, (_, i) => i) }), AUDIENCES.admin, 'too many'), /more than 20000/)

  const large = admin({ clients: Array.from({ length: 10_000 }, (_, i) => `client-${100_000 + i}`) })
  t.ok(large.length > MAX_TOKEN_LENGTH * 30, `an admin token of ${large.length} characters`)
  t.equal(v.verify(large, AUDIENCES.admin).visibility?.clients?.size, 10_000, 'is verified')
  t.match(refused(t, v, admin({ clients: ['x'.repeat(100)], name: 'y'.repeat(MAX_ADMIN_TOKEN_LENGTH) }), AUDIENCES.admin, 'over the admin bound'), /longer than 262144/)
  t.match(refused(t, v, handToken({ alg: 'HS256' }, clientPayload({ name: 'x'.repeat(MAX_TOKEN_LENGTH) }), NEW_SECRET), AUDIENCES.client, 'a client token keeps its bound'), /longer than 4096/)
})
