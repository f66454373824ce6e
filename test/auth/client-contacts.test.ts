/**
 * The compact memory of client contacts: verified client tokens are found again without a
 * signature check, only the very token verified is found, and what is kept follows the
 * contacts who are still around. Time is the injected clock.
 */
import t from 'tap'
import { AUDIENCES, createTokenVerifier, signToken, type TokenVerifier } from '../../src/auth/tokens.js'
import { ClientContacts } from '../../src/auth/client-contacts.js'

const SECRET = 'client-contacts-secret-0123456789'
const T0 = 1_800_000_000_000
const KEEP_IDLE_MS = 150_000

function setup(maxContacts?: number): { v: TokenVerifier; contacts: ClientContacts; clock: { ms: number }; secrets: string[] } {
  const clock = { ms: T0 }
  // Mutable on purpose: a test swaps the secret to show which tokens are not checked again.
  const secrets = [SECRET]
  const contacts = new ClientContacts({ now: () => clock.ms, keepIdleMs: KEEP_IDLE_MS, maxContacts })
  return { v: createTokenVerifier({ secrets, now: () => clock.ms, clients: contacts }), contacts, clock, secrets }
}

function mint(sub: string, over: { name?: string; company?: string; ttlS?: number; at?: number } = {}): string {
  return signToken({ aud: 'client', sub, clientId: `client-of-${sub}`, name: over.name, company: over.company, ttlS: over.ttlS ?? 3600 }, [SECRET], over.at ?? T0)
}

t.test('a verified client token is found again without a signature check, with its claims', async (t) => {
  const { v, contacts, secrets } = setup()
  const token = mint('contact-1', { name: 'Ann', company: '' })
  const claims = { aud: 'cat:client', sub: 'contact-1', clientId: 'client-of-contact-1', name: 'Ann', company: '', exp: T0 / 1000 + 3600 }
  t.same(v.verify(token, AUDIENCES.client), claims, 'first use: verified')
  t.same(contacts.usage(), { tokens: 1, contacts: 1 })
  secrets[0] = 'another-secret-that-signed-nothing'
  t.same(v.verify(token, AUDIENCES.client), claims, 'found again: the signature is not checked a second time')
  t.throws(() => v.verify(mint('contact-2'), AUDIENCES.client), { code: 'invalid_token' }, 'a token not seen before is checked (and now fails)')
})

t.test('only the very token verified is found: altered tokens go through full verification', async (t) => {
  const { v } = setup()
  const token = mint('contact-1')
  v.verify(token, AUDIENCES.client)
  const [header = '', payload = '', signature = ''] = token.split('.')
  const forged = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  forged.sub = 'someone-else'
  const altered = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`
  t.throws(() => v.verify(altered, AUDIENCES.client), { code: 'invalid_token', message: /signature/ }, 'another payload with the same signature')
  const lastChar = signature.at(-1) === 'A' ? 'B' : 'A'
  t.throws(() => v.verify(`${header}.${payload}.${signature.slice(0, -1)}${lastChar}`, AUDIENCES.client), { code: 'invalid_token' }, 'the signature changed past the characters kept')
  t.throws(() => v.verify(`${header}.${payload}.${signature}x`, AUDIENCES.client), { code: 'invalid_token' }, 'a longer signature')
  t.throws(() => v.verify(token, AUDIENCES.admin), { code: 'invalid_token', message: /audience/ }, 'a remembered client token is still no staff token')
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1', 'the token itself still is found')
})

t.test('a remembered token still expires', async (t) => {
  const { v, clock } = setup()
  const token = mint('contact-1', { ttlS: 60 })
  v.verify(token, AUDIENCES.client)
  clock.ms = T0 + 90_000
  t.equal(v.verify(token, AUDIENCES.client).sub, 'contact-1', 'at exp + 30 s of skew')
  clock.ms = T0 + 91_000
  t.throws(() => v.verify(token, AUDIENCES.client), { code: 'invalid_token', message: /expired/ })
})

t.test('a contact is one entry whatever its tokens; its latest claims are what it shows', async (t) => {
  const { v, contacts } = setup()
  const first = mint('contact-1', { name: 'Ann' })
  const second = mint('contact-1', { name: 'Ann Example', at: T0 + 1000 })
  v.verify(first, AUDIENCES.client)
  v.verify(second, AUDIENCES.client)
  t.same(contacts.usage(), { tokens: 2, contacts: 1 })
  t.equal(v.verify(first, AUDIENCES.client).name, 'Ann Example', 'the older token shows the newer name')
})

t.test('tokens unused past keepIdle and expired ones are dropped when room is needed; found ones stay', async (t) => {
  const { v, contacts, clock } = setup()
  const idle = Array.from({ length: 300 }, (_, i) => mint(`idle-${i}`))
  const expiring = Array.from({ length: 300 }, (_, i) => mint(`expiring-${i}`, { ttlS: 100 }))
  for (const token of [...idle, ...expiring]) v.verify(token, AUDIENCES.client)
  const active = Array.from({ length: 3000 }, (_, i) => mint(`active-${i}`, { ttlS: 100_000 }))
  // The active contacts beat every 30 s for 10 minutes; new ones keep arriving, so the table
  // is rebuilt along the way.
  for (let round = 0; round < 20; round += 1) {
    clock.ms += 30_000
    for (const token of active.slice(0, 150 * (round + 1))) v.verify(token, AUDIENCES.client)
  }
  const usage = contacts.usage()
  t.equal(usage.tokens, 3000, 'only the active tokens are left')
  t.equal(usage.contacts, 3000, 'and their contacts')
  for (const [i, token] of active.entries()) t.equal(v.verify(token, AUDIENCES.client).sub, `active-${i}`)
  t.throws(() => v.verify(expiring[0] as string, AUDIENCES.client), { message: /expired/ }, 'an expired one, checked again, is refused')
})

t.test('grants are remembered per contact and forgotten as told', async (t) => {
  const { v, contacts } = setup()
  v.verify(mint('contact-1'), AUDIENCES.client)
  v.verify(mint('contact-2'), AUDIENCES.client)
  const { grants } = contacts
  t.notOk(grants.has('contact-1'), 'nothing is known at first')
  grants.add('contact-1')
  grants.add('contact-2')
  grants.add('unknown')
  t.ok(grants.has('contact-1'))
  t.notOk(grants.has('unknown'), 'a contact without a token kept is not remembered')
  grants.delete('contact-1')
  t.notOk(grants.has('contact-1'))
  t.ok(grants.has('contact-2'))
  grants.clear()
  t.notOk(grants.has('contact-2'))
})

t.test('past maxContacts, new contacts are verified each time and not kept', async (t) => {
  const { v, contacts } = setup(2)
  for (const sub of ['a', 'b', 'c']) t.equal(v.verify(mint(sub), AUDIENCES.client).sub, sub)
  t.same(contacts.usage(), { tokens: 2, contacts: 2 })
  t.equal(v.verify(mint('c'), AUDIENCES.client).sub, 'c', 'still verified')
})

t.test('past the old 100 000 bound, every contact seen is still found without a signature check', async (t) => {
  const { v, contacts, secrets } = setup()
  const count = 150_000
  const tokens = Array.from({ length: count }, (_, i) => mint(`many-${i}`))
  for (const token of tokens) v.verify(token, AUDIENCES.client)
  t.same(contacts.usage(), { tokens: count, contacts: count })
  secrets[0] = 'another-secret-that-signed-nothing'
  let found = 0
  for (const [i, token] of tokens.entries()) if (v.verify(token, AUDIENCES.client).sub === `many-${i}`) found += 1
  t.equal(found, count, 'the first as well as the last')
})

t.test('the counts and grant asked for are those of the contact named, not of the last token found', async (t) => {
  const { v, contacts, clock } = setup()
  const ann = mint('ann', { ttlS: 100 })
  const bob = mint('bob', { ttlS: 100_000 })
  v.verify(ann, AUDIENCES.client)
  v.verify(bob, AUDIENCES.client)
  contacts.grants.add('ann')
  t.equal(v.verify(bob, AUDIENCES.client).sub, 'bob')
  t.equal(contacts.hit('ann', 1), 1, "ann's first request, asked right after bob's token was found")
  t.equal(contacts.hit('bob', 1), 1, "bob's first")
  t.equal(contacts.hit('ann', 1), 2, "ann's second")
  t.notOk(contacts.grants.has('bob'), "ann's grant is not bob's")
  t.equal(v.verify(ann, AUDIENCES.client).sub, 'ann')
  t.notOk(contacts.grants.has('bob'), 'nor after her token was found last')
  t.ok(contacts.grants.has('ann'))
  // Ann's token expires and is dropped at the next rebuild; new contacts take the freed places.
  clock.ms += 200_000
  t.equal(v.verify(bob, AUDIENCES.client).sub, 'bob', 'bob is still about')
  for (let i = 0; i < 1000; i += 1) v.verify(mint(`new-${i}`, { at: clock.ms }), AUDIENCES.client)
  t.equal(contacts.hit('ann', 2), -1, 'a dropped contact is not counted, whoever took its place')
  t.notOk(contacts.grants.has('ann'), 'nor remembered as granted')
  t.equal(contacts.hit('bob', 2), 1)
})
