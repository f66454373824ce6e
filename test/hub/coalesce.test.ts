import t from 'tap'
import { coalesce } from '../../src/hub/coalesce.js'
import type { Presence, PresenceChange } from '../../src/presence/presence-engine.js'

const p = (contactId: string, path = '/'): Presence => ({ contactId, clientId: 'k', name: '', company: '', path, title: '', state: 'active', since: 1, lastSeen: 1, tabs: 1 })
const joined = (id: string, path?: string): PresenceChange => ({ kind: 'joined', presence: p(id, path) })
const updated = (id: string, path?: string): PresenceChange => ({ kind: 'updated', presence: p(id, path) })
const left = (id: string, at = 5): PresenceChange => ({ kind: 'left', left: { contactId: id, clientId: 'k', at, reason: 'leave' } })

t.equal(coalesce([]), undefined, 'nothing to say')
t.equal(coalesce([joined('a'), left('a')]), undefined, 'joined then left cancel out')
t.same(coalesce([joined('a', '/1'), updated('a', '/2')]), { joined: [p('a', '/2')], updated: [], left: [] }, 'joined then updated is a joined with the latest state')
t.same(coalesce([updated('a', '/1'), updated('a', '/2')]), { joined: [], updated: [p('a', '/2')], left: [] })
t.same(coalesce([updated('a'), left('a')]), { joined: [], updated: [], left: [{ contactId: 'a', clientId: 'k', at: 5, reason: 'leave' }] })
t.same(coalesce([left('a'), joined('a', '/x')]), { joined: [p('a', '/x')], updated: [], left: [{ contactId: 'a', clientId: 'k', at: 5, reason: 'leave' }] }, 'left then joined: both, left applied first')
t.same(coalesce([left('a', 1), joined('a'), left('a', 9)]), { joined: [], updated: [], left: [{ contactId: 'a', clientId: 'k', at: 9, reason: 'leave' }] }, 'left, joined, left: the last left')
t.same(coalesce([left('a'), joined('a', '/1'), updated('a', '/2')])?.joined, [p('a', '/2')])
t.same(coalesce([joined('a'), joined('b'), left('a')]), { joined: [p('b')], updated: [], left: [] }, 'contacts are independent')
