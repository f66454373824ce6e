import t from 'tap'
import { recordPart as partOf } from '../../src/presence/redis/record-part.js'
import { recordPresence } from '../../src/presence/redis/records.js'

// A record as lua/records.lua writes one: RS becomes RS "0", US becomes RS "1", fields joined by US.
const escapeField = (text: string): string => text.replaceAll('\x1e', '\x1e0').replaceAll('\x1f', '\x1e1')
interface Fields { clientId: string; name: string; company: string; path: string; title: string; since: number | string; tabs: string }
const record = (f: Fields): Buffer => Buffer.from([f.clientId, f.name, f.company, f.path, f.title].map(escapeField).concat([String(f.since), f.tabs]).join('\x1f'), 'utf8')

const plain: Fields = { clientId: 'client-1', name: 'Ada Lovelace', company: 'Acme', path: '/clients/tickets', title: 'Support tickets', since: 1764900000000, tabs: '0tab1' }

/**
 * The bytes a dashboard got before parts were written from bytes: JSON.stringify of the
 * presences, as UTF-8. Compared as latin1 text, byte for byte: a comparison of decoded text
 * would read bytes that are not UTF-8 as the replacement character on both sides.
 */
const expected = (ids: string[], records: (Buffer | null)[], lastSeen: Map<string, number>, sees?: (clientId: string) => boolean): string | undefined => {
  const presences = ids.flatMap((id, k) => {
    const raw = records[k]
    return raw == null ? [] : [recordPresence(id, raw.toString('utf8'), lastSeen.get(id))]
  }).filter((p) => sees === undefined || sees(p.clientId))
  return presences.length === 0 ? undefined : Buffer.from(JSON.stringify(presences), 'utf8').toString('latin1')
}
/** The part, with the last heartbeats given by contact. */
const recordPart = (ids: string[], records: (Buffer | null)[], lastSeen: Map<string, number>): ReturnType<typeof partOf> => partOf(ids, records, ids.map((id) => lastSeen.get(id)))
const bytesOf = (json: Uint8Array | undefined): string | undefined => (json === undefined ? undefined : Buffer.from(json).toString('latin1'))

t.test('a part written from records is the JSON of their presences, byte for byte', async (t) => {
  const cases: [string, Fields][] = [
    ['plain ASCII', plain],
    ['quotes and backslashes', { ...plain, name: 'O"Brien \\ Sons', title: 'say "hi"\\' }],
    ['control characters', { ...plain, company: 'a\tb\nc\rd\be\ff\x00g\x07h\x7f', path: '/x\x01\x19' }],
    ['the record\'s own separators, escaped', { ...plain, name: 'a\x1eb\x1fc', title: '\x1f\x1e\x1e0\x1e1' }],
    ['scripts beyond ASCII', { ...plain, name: 'Zoë Ångström 李雷 Ωμέγα', company: 'Café 🚀', title: '→ ✓ \u2028\u2029' }],
    ['empty fields', { ...plain, clientId: '', name: '', company: '', path: '', title: '' }],
    ['several tabs, one visible', { ...plain, tabs: '1a 1b 0c' }],
    ['hidden tabs only', { ...plain, tabs: '1a 1b' }],
  ]
  for (const [what, fields] of cases) {
    const ids = ['contact-1']
    const records = [record(fields)]
    const lastSeen = new Map([['contact-1', 1764900012345]])
    const part = recordPart(ids, records, lastSeen)
    t.equal(bytesOf(part.json()), expected(ids, records, lastSeen), what)
    t.equal(part.size, 1, `${what}: one contact`)
  }
})

t.test('contact ids that need escaping, and a contact without a last heartbeat, are written as JSON.stringify writes them', async (t) => {
  const ids = ['plain', 'quo"te', 'back\\slash', 'ctl\u0001', 'ünï', 'e🚀', 'no-last-seen']
  const records = ids.map(() => record(plain))
  const lastSeen = new Map(ids.slice(0, -1).map((id, k) => [id, 1764900000000 + k]))
  t.equal(bytesOf(recordPart(ids, records, lastSeen).json()), expected(ids, records, lastSeen))
})

t.test('records the bytes cannot be copied from are written from their presences: not UTF-8, a since that is not a plain integer', async (t) => {
  const broken = Buffer.concat([Buffer.from('client-1\x1fA'), Buffer.from([0xc3, 0x28]), Buffer.from('\x1fAcme\x1f/\x1fT\x1f1764900000000\x1f0a')])
  const ids = ['bytes', 'leading-zero', 'exponent', 'negative', 'ok']
  const records = [broken, record({ ...plain, since: '0017' }), record({ ...plain, since: '1e3' }), record({ ...plain, since: -5 }), record(plain)]
  const lastSeen = new Map(ids.map((id) => [id, 5]))
  const json = recordPart(ids, records, lastSeen).json()
  t.equal(bytesOf(json), expected(ids, records, lastSeen))
  t.equal((JSON.parse(Buffer.from(json as Uint8Array).toString('utf8')) as { name: string }[])[0]?.name, 'A\ufffd(', 'bytes that are not UTF-8 are sent as the replacement character, not as they are')
})

t.test('an RS at the end of a field (no script writes one) is read as RS, and the separator after it still ends the field', async (t) => {
  const ids = ['x']
  const records = [Buffer.from('client\x1e\x1fname\x1e\x1fc\x1fp\x1ft\x1f1\x1f0t')]
  t.equal(bytesOf(recordPart(ids, records, new Map()).json()), expected(ids, records, new Map()))
})

t.test('a record that is not one fails the part, as reading its presence does', async (t) => {
  t.throws(() => recordPart(['x'], [Buffer.from('client\x1fname only')], new Map()), /not a presence record/)
  t.throws(() => recordPart(['x'], [Buffer.from('a\x1fb\x1fc\x1fd\x1fe\x1f1\x1f0t\x1fextra')], new Map()), /not a presence record/)
})

t.test('contacts whose records are gone are left out; a part of none has no text', async (t) => {
  const ids = ['a', 'b', 'c']
  const records = [record(plain), null, record({ ...plain, name: 'C' })]
  const lastSeen = new Map([['a', 1], ['c', 3]])
  const part = recordPart(ids, records, lastSeen)
  t.equal(part.size, 2)
  t.strictSame(part.presences().map((p) => p.contactId), ['a', 'c'])
  t.equal(bytesOf(part.json()), expected(ids, records, lastSeen))
  t.equal(recordPart(['a'], [null], new Map()).json(), undefined)
})

t.test('a part for a token that sees some clients holds their contacts only, in order', async (t) => {
  const ids = Array.from({ length: 20 }, (_, k) => `contact-${k}`)
  const records = ids.map((_, k) => record({ ...plain, clientId: `client-${k % 4}`, name: `N${k}` }))
  const lastSeen = new Map(ids.map((id, k) => [id, 1000 + k]))
  const part = recordPart(ids, records, lastSeen)
  const some = (clientId: string): boolean => clientId === 'client-1' || clientId === 'client-3'
  t.equal(bytesOf(part.json(some)), expected(ids, records, lastSeen, some), 'two clients of four')
  t.equal(bytesOf(part.json((c) => c === 'client-2')), expected(ids, records, lastSeen, (c) => c === 'client-2'), 'one client')
  t.equal(bytesOf(part.json(() => true)), expected(ids, records, lastSeen), 'every client')
  t.equal(part.json(() => false), undefined, 'none')
  const escaped = recordPart(['e'], [record({ ...plain, clientId: 'cl\x1eent' })], new Map())
  t.ok(escaped.json((c) => c === 'cl\x1eent'), 'a client id with the record\'s escapes is read unescaped')
})

t.test('random records: the written text is always the presences\' JSON', async (t) => {
  const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\x00', '\x1e', '\x1f', '\x7f', 'é', '€', '😀', '\u2028', '|', '0', '1']
  let seed = 42
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  const text = (): string => Array.from({ length: random(12) }, () => alphabet[random(alphabet.length)]).join('')
  const ids: string[] = []
  const records: Buffer[] = []
  const lastSeen = new Map<string, number>()
  for (let k = 0; k < 2000; k += 1) {
    const id = `${text()}#${k}`
    ids.push(id)
    records.push(record({ clientId: text(), name: text(), company: text(), path: text(), title: text(), since: random(2 ** 30) * 1000, tabs: Array.from({ length: 1 + random(3) }, (_, i) => `${random(2)}s${i}`).join(' ') }))
    if (random(10) > 0) lastSeen.set(id, random(2 ** 30) * 1000 + 7)
  }
  const part = recordPart(ids, records, lastSeen)
  t.equal(bytesOf(part.json()), expected(ids, records, lastSeen))
  const sees = (clientId: string): boolean => clientId.length % 2 === 0
  t.equal(bytesOf(part.json(sees)), expected(ids, records, lastSeen, sees))
})
