/**
 * Every id a token can carry (up to 128 UTF-16 code units, any but control characters) works
 * on every route that takes it in the path: read, export, erase (a GDPR erasure that cannot
 * happen is a failure), on MariaDB and on SQLite.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { AUDIENCES, MAX_ID_LENGTH, createTokenVerifier } from '../../src/auth/tokens.js'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl, SECRET } from '../helpers/app.js'
import { createTestDataDir, createTestMysqlDatabase } from '../helpers/database.js'

/** `unit` repeated to exactly `length` UTF-16 code units. */
function idOf(unit: string, length = MAX_ID_LENGTH): string {
  const id = unit.repeat(Math.ceil(length / unit.length)).slice(0, length)
  if (id.length !== length) throw new Error('bad id length')
  return id
}

const IDS = {
  'ASCII, 128 characters': { contact: idOf('contact-0123456789-'), client: idOf('client-ABCDEFGHIJ-') },
  // 2-, 3- and 4-byte UTF-8 (the emoji is two UTF-16 units): 128 units, 864 characters percent-encoded.
  'multibyte, 128 code units': { contact: idOf('ü€😀'), client: idOf('日本語') },
  // Characters that are syntax in a URL, each percent-encoded in the path.
  'URL syntax characters': { contact: idOf('a/b?c#d%e f+g&h'), client: idOf('k/l%m?') },
}

async function databaseEnv(t: Test, target: 'mysql' | 'sqlite'): Promise<Record<string, string>> {
  return target === 'mysql' ? { DATABASE_URL: await createTestMysqlDatabase(t, 'ids') } : { CAT_DATA_DIR: createTestDataDir(t, 'ids') }
}

async function drain(app: FastifyInstance): Promise<void> {
  while ((await app.activityWriter.writeOnce(0)) > 0);
}

for (const target of ['mysql', 'sqlite'] as const) {
  t.test(`${target}: contacts and clients with the longest ids a token allows are read, exported and erased`, async (t) => {
    const app = await buildTestApp(t, { env: await databaseEnv(t, target) })
    const admin = { authorization: `Bearer ${adminToken()}` }
    const verifier = createTokenVerifier({ secrets: [SECRET], now: Date.now })
    for (const [label, { contact, client }] of Object.entries(IDS)) {
      const token = clientToken({ sub: contact, clientId: client })
      t.equal(verifier.verify(token, AUDIENCES.client).sub, contact, `${label}: a token carries the id`)
      await ensureConsent(app, token)
      const beat = await app.inject(heartbeatUrl({ token, sid: 'longidtab1', event: 'nav', path: '/tickets', title: 'Tickets' }))
      t.equal(beat.statusCode, 204, `${label}: heartbeat`)
      await drain(app)

      const contactPath = `/admin/api/contacts/${encodeURIComponent(contact)}`
      const activity = await app.inject({ url: `${contactPath}/activity`, headers: admin })
      t.equal(activity.statusCode, 200, `${label}: contact activity ${activity.body.slice(0, 200)}`)
      t.match(activity.json(), { sessions: [{ contactId: contact, clientId: client, pages: [{ path: '/tickets' }] }] }, `${label}: its session`)

      const byClient = await app.inject({ url: `/admin/api/clients/${encodeURIComponent(client)}/activity`, headers: admin })
      t.equal(byClient.statusCode, 200, `${label}: client activity`)
      t.match(byClient.json(), { sessions: [{ contactId: contact, clientId: client }] }, `${label}: the client's session`)

      const exported = await app.inject({ url: `${contactPath}/export`, headers: admin })
      t.equal(exported.statusCode, 200, `${label}: export`)
      t.match(exported.json(), { contactId: contact, presence: { contactId: contact }, sessions: [{ contactId: contact }], consents: [{ decision: 'granted' }] }, `${label}: everything stored`)

      const byStaff = await app.inject({ method: 'DELETE', url: contactPath, headers: { authorization: `Bearer ${adminToken({ role: 'staff' })}` } })
      t.equal(byStaff.statusCode, 403, `${label}: a staff token may not erase`)
      t.match(byStaff.json(), { error: { code: 'forbidden', message: /admin/ } })
      const stillThere = await app.inject({ url: `${contactPath}/export`, headers: { authorization: `Bearer ${adminToken({ role: 'staff' })}` } })
      t.match(stillThere.json(), { contactId: contact, sessions: [{ contactId: contact }] }, `${label}: a staff token reads; nothing was erased`)

      const erased = await app.inject({ method: 'DELETE', url: contactPath, headers: admin })
      t.equal(erased.statusCode, 204, `${label}: erase ${erased.body}`)
      await drain(app)
      const after = await app.inject({ url: `${contactPath}/export`, headers: admin })
      t.match(after.json(), { contactId: contact, presence: null, sessions: [], events: [], consents: [] }, `${label}: nothing left`)
    }
    // One unit longer than any token's id: refused by the route's own check, not the router.
    const tooLong = await app.inject({ url: `/admin/api/contacts/${'x'.repeat(MAX_ID_LENGTH + 1)}/export`, headers: admin })
    t.equal(tooLong.statusCode, 400)
    t.match(tooLong.json(), { error: { code: 'invalid_request' } })
  })
}
