/**
 * Fault probe: a dashboard that stops reading (its socket paused) while diffs pour out. The
 * server does not buffer for it without end: once it lags its send buffer it is closed with
 * 1013 (try again later), memory stays bounded, and a dashboard that reads keeps its diffs.
 */
import t from 'tap'
import { adminToken, buildTestApp, clientToken, ensureConsent, heartbeatUrl } from '../helpers/app.js'
import { connectDashboard } from '../helpers/ws.js'
import { eventually, percentile, printFigures, rssMiB } from '../helpers/faults.js'

const SEND_BUFFER = 256 * 1024
const CONTACTS = 200
const MAX_BEATS = 30_000

t.test('a paused dashboard is closed with 1013 while the others keep receiving diffs; memory stays bounded', async (t) => {
  const app = await buildTestApp(t, { sendBufferBytes: SEND_BUFFER })
  const tokens = Array.from({ length: CONTACTS }, (_, k) => clientToken({ sub: `paused-${k}`, clientId: 'client-paused' }))
  for (const token of tokens) await ensureConsent(app, token)
  const reader = await connectDashboard(app, adminToken())
  const paused = await connectDashboard(app, adminToken())
  await reader.waitFor((m) => m.type === 'snapshot')
  await paused.waitFor((m) => m.type === 'snapshot')
  let readerBytes = 0
  reader.socket.on('message', (data: Buffer) => (readerBytes += data.length))
  paused.socket.pause()
  const rssBefore = rssMiB()

  // Long pages make big diffs: each beat is a new page of its contact.
  const title = 'T'.repeat(500)
  const latencies: number[] = []
  let beats = 0
  let rssPeak = rssBefore
  while (beats < MAX_BEATS && app.hub.size === 2) {
    const k = beats % CONTACTS
    const t0 = performance.now()
    const res = await app.inject(heartbeatUrl({ token: tokens[k], sid: `pausedtab${k}`, event: 'nav', path: `/${beats}/${'p'.repeat(1900)}`, title }))
    latencies.push(performance.now() - t0)
    if (res.statusCode !== 204) throw new Error(`heartbeat answered ${res.statusCode}`)
    beats += 1
    if (beats % 500 === 0) {
      rssPeak = Math.max(rssPeak, rssMiB())
      // Let the hub flush its windows to the sockets.
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  const rssAtClose = rssMiB()
  const dropped = app.hub.size === 1
  // A marker after the drop: the reading dashboard still gets diffs.
  const marker = clientToken({ sub: 'paused-marker', clientId: 'client-paused' })
  await ensureConsent(app, marker)
  await app.inject(heartbeatUrl({ token: marker, sid: 'pausedmarker', event: 'nav', path: '/marker' }))
  const markerSeen = await reader.waitFor((m) => m.joined?.some((p) => p.contactId === 'paused-marker') === true, 5000).then(() => true, () => false)
  // The paused client reads again: what was buffered, then the close.
  paused.socket.resume()
  const closed = await Promise.race([paused.closed, eventually(() => false, 10_000).then(() => undefined)])

  printFigures(t, 'paused-dashboard', {
    beats,
    diffBytesToReader: readerBytes,
    sendBufferKiB: SEND_BUFFER / 1024,
    pausedClose: closed?.code ?? 'none',
    readerOpen: reader.socket.readyState === 1,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    rssBeforeMiB: rssBefore,
    rssPeakMiB: rssPeak,
    rssAtCloseMiB: rssAtClose,
  })
  t.ok(dropped, 'the hub let go of the paused dashboard')
  t.equal(closed?.code, 1013, 'it was closed with 1013 (try again later)')
  t.ok(markerSeen, 'the reading dashboard keeps receiving diffs')
  t.equal(reader.socket.readyState, 1, 'and stays open')
  t.ok(rssPeak - rssBefore < 256, `memory stays bounded (+${rssPeak - rssBefore} MiB)`)
  await reader.close()
})
