/**
 * CAT_TRUST_PROXY: whose X-Forwarded-For the server believes, seen where it shows, the consent
 * ledger's stored address (cut to /24 or /48). Real sockets where the peer's address matters
 * (loopback has all of 127.0.0.0/8, so a client can come from 127.0.5.7 while a "proxy" comes
 * from 127.0.0.1); light-my-request's `remoteAddress` for IPv6 peers, which a machine without
 * global IPv6 addresses cannot open sockets from.
 */
import { request } from 'node:http'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminToken, buildTestApp, clientToken } from '../helpers/app.js'

const CLIENT_ADDRESS = '127.0.5.7'

function consentBody(token: string): string {
  return JSON.stringify({ token, decision: 'granted', version: 'trust-proxy', locale: 'en' })
}

/** POSTs a consent over a real socket from `localAddress`, with `forwardedFor` as X-Forwarded-For when given. */
async function postConsentFrom(app: FastifyInstance, localAddress: string, token: string, forwardedFor?: string): Promise<number> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const body = consentBody(token)
  const headers: Record<string, string> = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }
  if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: '/clients/cat_consent', headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The addresses the ledger holds for a contact, oldest first, as the export shows them. */
async function ledgerAddresses(app: FastifyInstance, contactId: string): Promise<string[]> {
  const res = await app.inject({ url: `/admin/api/contacts/${contactId}/export`, headers: { authorization: `Bearer ${adminToken()}` } })
  if (res.statusCode !== 200) throw new Error(`export answered ${res.statusCode}: ${res.body}`)
  return (res.json() as { consents: { ip: string }[] }).consents.map((c) => c.ip)
}

t.test('without CAT_TRUST_PROXY a forged X-Forwarded-For is ignored: the socket address is recorded', async (t) => {
  const app = await buildTestApp(t)
  t.equal(await postConsentFrom(app, CLIENT_ADDRESS, clientToken({ sub: 'none-1' }), '198.51.100.7'), 204)
  t.same(await ledgerAddresses(app, 'none-1'), ['127.0.5.0'], 'the peer, not the header')
  const injected = await app.inject({ method: 'POST', url: '/clients/cat_consent', remoteAddress: '2001:db8:aa:1::5', headers: { 'content-type': 'text/plain', 'x-forwarded-for': '2001:db8:ff:99::1' }, payload: consentBody(clientToken({ sub: 'none-2' })) })
  t.equal(injected.statusCode, 204)
  t.same(await ledgerAddresses(app, 'none-2'), ['2001:db8:aa::'], 'an IPv6 peer too')
})

t.test('with CAT_TRUST_PROXY, a listed proxy is believed and anyone else is not', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_TRUST_PROXY: '127.0.0.1,10.0.0.0/8' } })

  t.equal(await postConsentFrom(app, CLIENT_ADDRESS, clientToken({ sub: 'forged' }), '198.51.100.7'), 204)
  t.same(await ledgerAddresses(app, 'forged'), ['127.0.5.0'], 'an unlisted peer\'s X-Forwarded-For is ignored')

  t.equal(await postConsentFrom(app, '127.0.0.1', clientToken({ sub: 'proxied' }), '198.51.100.7, 203.0.113.77'), 204)
  t.same(await ledgerAddresses(app, 'proxied'), ['203.0.113.0'], 'from the proxy: its rightmost hop, the client it saw; what the client wrote to the left is not believed')

  t.equal(await postConsentFrom(app, '127.0.0.1', clientToken({ sub: 'chain' }), '198.51.100.7, 203.0.113.77, 10.9.8.7'), 204)
  t.same(await ledgerAddresses(app, 'chain'), ['203.0.113.0'], 'listed hops in the chain (an inner proxy in 10.0.0.0/8) are skipped to the rightmost unlisted one')

  t.equal(await postConsentFrom(app, '127.0.0.1', clientToken({ sub: 'direct' })), 204)
  t.same(await ledgerAddresses(app, 'direct'), ['127.0.0.0'], 'a listed peer without the header is the client itself')
})

t.test('with CAT_TRUST_PROXY, an IPv6 CIDR is matched', async (t) => {
  const app = await buildTestApp(t, { env: { CAT_TRUST_PROXY: '2001:db8:aa::/48' } })
  const consentFrom = async (remoteAddress: string, sub: string, forwardedFor: string): Promise<string[]> => {
    const res = await app.inject({ method: 'POST', url: '/clients/cat_consent', remoteAddress, headers: { 'content-type': 'text/plain', 'x-forwarded-for': forwardedFor }, payload: consentBody(clientToken({ sub })) })
    t.equal(res.statusCode, 204)
    return ledgerAddresses(app, sub)
  }
  t.same(await consentFrom('2001:db8:aa:1::5', 'v6-in', '2001:db8:ff:99::1'), ['2001:db8:ff::'], 'a proxy inside the /48: the forwarded client, cut to /48')
  t.same(await consentFrom('2001:db8:aa:ffff::1', 'v6-mixed', '203.0.113.77'), ['203.0.113.0'], 'an IPv4 client behind an IPv6 proxy')
  t.same(await consentFrom('2001:db8:ab::5', 'v6-out', '2001:db8:ff:99::1'), ['2001:db8:ab::'], 'a peer outside the /48: its own address')
})
