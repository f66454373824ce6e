import { AUDIENCES, createTokenVerifier, signToken } from './src/auth/tokens.js'
import { ClientContacts } from './src/auth/client-contacts.js'
const N = 100000
const secret = 'x'.repeat(32)
const now = () => 1_800_000_000_000
const tokens: string[] = []
for (let i = 0; i < N; i++) tokens.push(signToken({ aud: 'client', sub: `contact-${i}`, clientId: `client-${i % 5000}`, name: `Contact ${i}`, company: `Company ${i % 5000}`, ttlS: 86400 }, [secret], now()))
const contacts = new ClientContacts({ now, keepIdleMs: 150000 })
const v = createTokenVerifier({ secrets: [secret], now, clients: contacts })
for (const tk of tokens) { const c = v.verify(tk, AUDIENCES.client); contacts.grants.add(c.sub) }
function time(label: string, fn: (tk: string) => unknown) {
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < 10; r++) for (const tk of tokens) fn(tk)
  console.log(label, (Number(process.hrtime.bigint() - t0) / (10 * N) / 1000).toFixed(3), 'µs')
}
let h = 0
function fnv(text: string): number { let hash = 0x811c9dc5; for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193); return hash >>> 0 }
for (let k = 0; k < 2; k++) {
time('fnv', (tk) => { h ^= fnv(tk) })
time('lookup', (tk) => contacts.lookup(tk))
time('verify', (tk) => v.verify(tk, AUDIENCES.client))
time('verify+has', (tk) => contacts.grants.has(v.verify(tk, AUDIENCES.client).sub))
}
console.log(tokens[0]!.length, h)
function fnv2(text: string): number { let hash = 0x811c9dc5; const n = text.length - 1; let i = 0; for (; i < n; i += 2) hash = Math.imul(hash ^ (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)), 0x01000193); if (i < text.length) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193); hash ^= hash >>> 15; hash = Math.imul(hash, 0x85ebca6b); return (hash ^ (hash >>> 13)) >>> 0 }
for (let k = 0; k < 3; k++) { time('fnv', (tk) => { h ^= fnv(tk) }); time('fnv2', (tk) => { h ^= fnv2(tk) }) }
