import t from 'tap'
import { buildTestApp, uniqueSite } from '../helpers/app.js'
import { startRedisServer } from '../helpers/redis-server.js'

const CONTACTS = 2000

t.test('Redis answers no part of a snapshot for longer than the command timeout while it is read: the parts come whole, every contact once', async (t) => {
  const server = await startRedisServer(t)
  const app = await buildTestApp(t, { site: uniqueSite('snapshot-stall'), env: { REDIS_URL: server.url, CAT_REDIS_TIMEOUT_MS: '100' } })
  for (let i = 0; i < CONTACTS; i += 200) {
    await Promise.all(Array.from({ length: 200 }, (_, k) => {
      const j = i + k
      return app.presence.heartbeat({ contactId: `c${j}`, clientId: `client${j % 7}`, name: `Contact ${j}`, company: 'Acme', sid: `tab${j}`, path: '/tickets', title: 'Tickets', event: 'nav' })
    }))
  }

  const reader = app.presence.snapshotParts()
  const seen: string[] = []
  let frozen = false
  // After the first part the next ones are on their way: Redis stops answering for four
  // command timeouts, then answers again.
  for await (const part of reader.parts) {
    for (const presence of part.presences()) seen.push(presence.contactId)
    if (!frozen) {
      frozen = true
      server.freeze()
      setTimeout(() => server.thaw(), 400)
    }
  }
  t.ok(frozen, 'Redis stood still during the read')
  t.equal(seen.length, CONTACTS, 'every contact is in the parts')
  t.equal(new Set(seen).size, CONTACTS, 'each of them once')
})
