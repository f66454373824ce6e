/**
 * A window's diff for dashboards of different visibilities: folded once, then each
 * visibility's text made once and shared by every socket of it; a left for a contact outside
 * the visibility is not in it; the left on the wire has the contract's fields.
 */
import t from 'tap'
import { foldDiff } from '../../src/hub/sender.js'
import { EVERY_CLIENT, visibilityOf } from '../../src/auth/visibility.js'
import type { FeedChange } from '../../src/hub/snapshot-handoff.js'
import type { Presence } from '../../src/presence/presence-engine.js'

const presence = (contactId: string, clientId: string): Presence => ({ contactId, clientId, name: '', company: '', path: '/', title: '', state: 'active', since: 1, lastSeen: 1, tabs: 1 })
let position = 0
const joined = (contactId: string, clientId: string): FeedChange => ({ partition: 0, position: (position += 1), change: { kind: 'joined', presence: presence(contactId, clientId) } })
const left = (contactId: string, clientId: string): FeedChange => ({ partition: 0, position: (position += 1), change: { kind: 'left', left: { contactId, clientId, at: 5, reason: 'leave' } } })

const folded = foldDiff([joined('ann', 'acme'), joined('gus', 'globex'), left('abe', 'acme'), left('gil', 'globex')], () => 1000)
if (folded === undefined) throw new Error('nothing folded')
const parse = (text: Buffer | undefined): unknown => (text === undefined ? undefined : JSON.parse(`{"type":"diff","seq":1${text.toString()}`))

t.same(parse(folded.textFor(visibilityOf(['acme']))), { type: 'diff', seq: 1, at: 1000, joined: [presence('ann', 'acme')], updated: [], left: [{ contactId: 'abe', at: 5, reason: 'leave' }] }, 'acme: its join and its leave, the leave without its client')
t.same(parse(folded.textFor(EVERY_CLIENT)), {
  type: 'diff', seq: 1, at: 1000,
  joined: [presence('ann', 'acme'), presence('gus', 'globex')], updated: [],
  left: [{ contactId: 'abe', at: 5, reason: 'leave' }, { contactId: 'gil', at: 5, reason: 'leave' }],
}, 'every client: all of it')
t.equal(folded.textFor(visibilityOf(['initech'])), undefined, 'a visibility none of the changes concern: nothing to send')
t.equal(folded.textFor(visibilityOf(['globex', 'acme'])), folded.textFor(visibilityOf(['acme', 'globex'])), 'tokens listing the same clients share one text (the same buffer)')
t.not(folded.textFor(visibilityOf(['acme'])), folded.textFor(visibilityOf(['globex'])), 'others have their own')
