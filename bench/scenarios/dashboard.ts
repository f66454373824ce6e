/**
 * The admin dashboard in Chromium (Debian's, the browser tests' flags, driven over the DevTools
 * protocol by bench/chromium.ts with no Network domain enabled) against a bench server (memory
 * engine) with 100 000 contacts online (20 000 quick):
 *
 * - first rows painted: from the page opening (navigation start) to the first timer after the
 *   animation frame that follows the widget's announcing its first snapshot in the document
 *   (`cat-snapshot`), the median of three page loads (one quick); beside it, the longest
 *   main-thread task of the load (parsing the snapshot is one);
 * - a search keystroke reflected: keys typed into the search box one by one; for each, from the
 *   key event's time stamp to the first timer after the next animation frame (the frame in
 *   which the list shows the new result is painted);
 * - 1 000 changes per second (page changes, leaves and joins, as heartbeats over HTTP, paced by
 *   autocannon) for 10 s (3 s quick): the main thread's busy share and its long tasks, from a
 *   trace of the page's renderer (its main thread's top-level tasks, over the wall time of the
 *   load); then the widget's count must equal the server's;
 * - the page's JS heap: the largest `JSHeapUsedSize` sampled once a second from the page's
 *   opening to the end of the changes, without forcing a collection (after one: the detail);
 * - the widget's size as served, gzipped.
 */
import { writeFileSync } from 'node:fs'
import { request } from 'undici'
import { signToken } from '../../src/auth/tokens.js'
import { launchCdpChromium, type CdpPage } from '../chromium.js'
import { BENCH_SECRET, adminToken, clientToken, load, log, quantile, round, startServer, tabId } from '../lib.js'
import type { RunOptions, ScenarioResult } from './types.js'

const CHANGES_PER_S = 1000
const TARGETS = { firstPaintMs: 1500, keystrokeMs: 100, busyPercent: 50, longTaskMs: 200, heapMB: 300 }

declare global {
  interface Window {
    bench?: {
      snapshot?: { paintedAt: number; receivedAt: number; renderMs: number; online: number }
      longTasks: { start: number; duration: number }[]
      keys: number[]
      keyDownAt: number
      snapshots: number
      /** The first WebSocket's times: created by the widget, open, its first message delivered to the page. */
      socket: { createdAt: number; openAt?: number; messageAt?: number } | null
    }
  }
}

/** Installed before the page's own scripts: what the page measures of itself. */
function instrument(): void {
  const bench: NonNullable<Window['bench']> = { longTasks: [], keys: [], keyDownAt: 0, snapshots: 0, socket: null }
  window.bench = bench
  // Listeners added in the constructor run before the widget's own `onmessage` (its parse).
  const Native = window.WebSocket
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      if (bench.socket !== null) return
      const times: { createdAt: number; openAt?: number; messageAt?: number } = { createdAt: performance.now() }
      bench.socket = times
      this.addEventListener('open', () => (times.openAt ??= performance.now()))
      this.addEventListener('message', () => (times.messageAt ??= performance.now()))
    }
  }
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) bench.longTasks.push({ start: entry.startTime, duration: entry.duration })
  }).observe({ type: 'longtask', buffered: true })
  document.addEventListener('cat-snapshot', (event) => {
    const detail = (event as CustomEvent<{ online: number; receivedAt: number; renderMs: number }>).detail
    bench.snapshots += 1
    if (bench.snapshot) return
    // The first timer after the next frame: the rows are laid out and painted.
    requestAnimationFrame(() => setTimeout(() => (bench.snapshot = { ...detail, paintedAt: performance.now() }), 0))
  }, true)
  document.addEventListener('keydown', (event) => (bench.keyDownAt = event.timeStamp), true)
  // `input` is composed: it reaches the document after the widget's own handler updated the list.
  document.addEventListener('input', () => {
    const downAt = bench.keyDownAt
    requestAnimationFrame(() => setTimeout(() => bench.keys.push(performance.now() - downAt), 0))
  })
}

async function heapMB(page: CdpPage): Promise<number> {
  const { metrics } = await page.send<{ metrics: { name: string; value: number }[] }>('Performance.getMetrics')
  return (metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0) / 2 ** 20
}

interface TraceEvent {
  name: string
  ph: string
  pid: number
  tid: number
  ts: number
  dur?: number
  args?: { name?: string }
}

/**
 * The renderer main thread's top-level tasks in a Chromium trace (µs → ms): of the threads named
 * CrRendererMain, the busiest (the page's; others are idle frames).
 */
function mainThreadTasks(traceEvents: readonly TraceEvent[]): number[] {
  const mains = new Set(traceEvents.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`))
  const byThread = new Map<string, TraceEvent[]>()
  for (const e of traceEvents) {
    const thread = `${e.pid}:${e.tid}`
    if (e.name !== 'RunTask' || e.ph !== 'X' || e.dur === undefined || !mains.has(thread)) continue
    byThread.set(thread, [...(byThread.get(thread) ?? []), e])
  }
  let busiest: number[] = []
  for (const events of byThread.values()) {
    events.sort((a, b) => a.ts - b.ts)
    const tasks: number[] = []
    let end = 0
    // A task nested in another (a nested run loop) is part of it.
    for (const e of events) {
      if (e.ts < end) continue
      end = e.ts + (e.dur ?? 0)
      tasks.push((e.dur ?? 0) / 1000)
    }
    if (tasks.reduce((a, b) => a + b, 0) > busiest.reduce((a, b) => a + b, 0)) busiest = tasks
  }
  return busiest
}

const fmt = (n: number): string => n.toLocaleString('en-US')

export async function dashboardScenario({ quick }: RunOptions): Promise<ScenarioResult> {
  const online = quick ? 20_000 : 100_000
  const durationS = quick ? 3 : 10
  const loads = quick ? 1 : 3
  const changes = CHANGES_PER_S * durationS
  const prefix = 'dash-joiner'
  log(`dashboard: seeding ${online} contacts online (memory engine)`)
  // Nobody beats while the browser watches: a long timeout keeps the seeded contacts online.
  const server = await startServer({ kind: 'memory', site: `bench-dashboard-${process.pid}`, online, consented: { prefix, count: changes }, timing: { heartbeatIntervalS: 300, presenceTimeoutS: 900 } })
  const browser = await launchCdpChromium({ width: 1280, height: 900 })
  const base = `http://127.0.0.1:${server.port}`
  const token = adminToken()
  try {
    const widget = await request(`${base}/admin/widget.js`, { headers: { 'accept-encoding': 'gzip' } })
    const widgetGzip = Buffer.from(await widget.body.arrayBuffer()).length
    if (widget.statusCode !== 200 || widget.headers['content-encoding'] !== 'gzip') throw new Error(`widget.js: ${widget.statusCode} ${String(widget.headers['content-encoding'])}`)

    const W = "document.querySelector('cat-online-clients').shadowRoot"
    const script = `(${instrument.toString()})()`
    let page: CdpPage | null = null
    const heapSamples: number[] = []
    const firstPaint: number[] = []
    const loadLongest: number[] = []
    for (let k = 0; k < loads; k += 1) {
      if (page) await page.close()
      page = await browser.open(`${base}/admin#token=${token}`, script)
      const snap = await page.waitFor<NonNullable<NonNullable<Window['bench']>['snapshot']>>('window.bench && window.bench.snapshot', 120_000)
      if (snap.online !== online) throw new Error(`the dashboard got ${snap.online} contacts, not ${online}`)
      const rows = await page.evaluate<number>(`${W}.querySelectorAll('.vp li').length`)
      if (rows === 0 || rows > 100) throw new Error(`${rows} rows in the document`)
      firstPaint.push(snap.paintedAt)
      const longest = await page.evaluate<number>('Math.max(0, ...window.bench.longTasks.map((task) => task.duration))')
      loadLongest.push(longest)
      heapSamples.push(await heapMB(page))
      const socket = await page.evaluate<NonNullable<Window['bench']>['socket']>('window.bench.socket')
      const ms = (n: number | undefined): string => (n === undefined ? '?' : String(Math.round(n)))
      log(`dashboard: load ${k + 1} of ${loads}: first rows painted ${Math.round(snap.paintedAt)} ms after the page opened (socket created at ${ms(socket?.createdAt)}, open at ${ms(socket?.openAt)}, snapshot delivered at ${ms(socket?.messageAt)}, parsed at ${Math.round(snap.receivedAt)} ms); longest task ${Math.round(longest)} ms; ${rows} rows in the document`)
    }
    if (!page) throw new Error('no page')
    const p = page

    // Keystrokes, once the load settled: a search narrowing letter by letter, then cleared.
    await p.waitFor('(() => { const t = window.bench.longTasks; const last = t[t.length - 1]; return last === undefined || performance.now() - (last.start + last.duration) > 1000 })()')
    await p.evaluate(`${W}.querySelector('input[type=search]').focus()`)
    const query = 'contact 4242'
    const press = async (key: string, code: number, text?: string): Promise<void> => {
      await p.send('Input.dispatchKeyEvent', { type: text === undefined ? 'rawKeyDown' : 'keyDown', key, windowsVirtualKeyCode: code, ...(text === undefined ? {} : { text, unmodifiedText: text }) })
      await p.send('Input.dispatchKeyEvent', { type: 'keyUp', key, windowsVirtualKeyCode: code })
    }
    for (let i = 0; i < query.length; i += 1) {
      const ch = query.charAt(i)
      await press(ch, ch.toUpperCase().charCodeAt(0), ch)
      await p.waitFor(`window.bench.keys.length >= ${i + 1}`)
    }
    const expected = Array.from({ length: online }, (_, j) => `contact ${j}`).filter((name) => name.includes(query)).length
    await p.waitFor(`${W}.querySelector('.shown').textContent === ${JSON.stringify(`${fmt(expected)} of ${fmt(online)} shown`)}`, 5000)
    await p.evaluate(`${W}.querySelector('input[type=search]').select()`)
    await press('Backspace', 8)
    await p.waitFor(`window.bench.keys.length >= ${query.length + 1}`)
    await p.waitFor(`${W}.querySelector('.shown').hidden`, 5000)
    const keys = await p.evaluate<number[]>('window.bench.keys')
    log(`dashboard: keystrokes ${keys.map((ms) => Math.round(ms)).join(', ')} ms`)

    // 1 000 changes a second: of every ten, eight page changes, a leave and a join.
    const now = Date.now()
    const paths: string[] = []
    for (let k = 0; k < changes; k += 1) {
      const j = k % online
      if (k % 10 === 0) paths.push(`/cat_heartbeat?token=${clientToken(j, now)}&sid=${tabId(j)}&path=%2Fclients%2Ftickets&title=Support%20tickets&event=leave`)
      else if (k % 10 === 5) {
        const joiner = signToken({ aud: 'client', sub: `${prefix}-${k}`, clientId: `client-${k % 1000}`, name: `Joiner ${k}`, company: `Company ${k % 1000}`, ttlS: 3600 }, [BENCH_SECRET], now)
        paths.push(`/cat_heartbeat?token=${joiner}&sid=join${String(k).padStart(8, '0')}&path=%2Fclients&title=Home&event=nav`)
      } else paths.push(`/cat_heartbeat?token=${clientToken(j, now)}&sid=${tabId(j)}&path=%2Fclients%2Finvoices%2F${k % 50}&title=Invoice%20${k % 50}&event=nav`)
    }
    const snapshotsBefore = await p.evaluate<number>('window.bench.snapshots')
    log(`dashboard: ${CHANGES_PER_S} changes/s for ${durationS} s`)
    let sent: Awaited<ReturnType<typeof load>> | undefined
    let wallS = 0
    const events = await browser.trace(async () => {
      const wallBefore = performance.now()
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          heapSamples.push(await heapMB(p))
          await new Promise((resolve) => setTimeout(resolve, 1000))
        }
      })()
      sent = await load(server.port, paths, { connections: 10, amount: changes, rate: CHANGES_PER_S })
      wallS = (performance.now() - wallBefore) / 1000
      sampling = false
      await sampler
    })
    if (!sent) throw new Error('no load')
    // BENCH_TRACE_FILE: the trace, for a look at what the main thread did (chrome://tracing, Perfetto).
    if (process.env.BENCH_TRACE_FILE) writeFileSync(process.env.BENCH_TRACE_FILE, JSON.stringify({ traceEvents: events }))
    const tasks = mainThreadTasks(events as unknown as TraceEvent[])
    const busyS = tasks.reduce((a, b) => a + b, 0) / 1000
    if (sent.errors > 0) throw new Error(`${sent.errors} of ${sent.requests} changes failed`)
    const during = tasks.filter((ms) => ms > 50)
    const resnapshots = (await p.evaluate<number>('window.bench.snapshots')) - snapshotsBefore
    const busyPercent = (busyS / wallS) * 100
    // Every change applied: the widget counts what the server has online.
    const res = await request(`${base}/admin/api/online`, { headers: { authorization: `Bearer ${token}` } })
    const serverOnline = ((await res.body.json()) as { online: unknown[] }).online.length
    await p.waitFor(`${W}.querySelector('.n').textContent === ${JSON.stringify(fmt(serverOnline))}`, 10_000)
    heapSamples.push(await heapMB(p))
    await p.send('HeapProfiler.collectGarbage')
    const heapAfterGc = await heapMB(p)
    const heapMax = Math.max(...heapSamples)
    const longestDuring = Math.max(0, ...during)
    log(`dashboard: busy ${round(busyPercent, 1)} % over ${round(wallS, 1)} s (${sent.requests} changes sent at ${Math.round(sent.rps)}/s), ${during.length} long tasks, longest ${Math.round(longestDuring)} ms; ${resnapshots} snapshots meanwhile; the widget counts ${serverOnline} as the server does; heap ${round(heapMax, 1)} MB (${round(heapAfterGc, 1)} MB after a collection)`)

    const paint = quantile(firstPaint, 0.5)
    const keyMax = Math.max(...keys)
    const of = loads > 1 ? ` (median of ${loads})` : ''
    return {
      name: 'dashboard',
      rows: [
        { scenario: 'dashboard', measure: `page opened → first rows painted, ${online} online, Chromium${of}`, value: `${Math.round(paint)} ms`, target: `≤ ${TARGETS.firstPaintMs} ms`, pass: paint <= TARGETS.firstPaintMs, detail: `loads ${firstPaint.map(Math.round).join(', ')} ms` },
        { scenario: 'dashboard', measure: 'longest main-thread task while the snapshot arrives (parsing it)', value: `${Math.round(quantile(loadLongest, 0.5))} ms`, target: '' },
        { scenario: 'dashboard', measure: `search keystroke → result painted (${keys.length} keys over ${online}: p50, max)`, value: `${Math.round(quantile(keys, 0.5))} ms, ${Math.round(keyMax)} ms`, target: `≤ ${TARGETS.keystrokeMs} ms`, pass: keyMax <= TARGETS.keystrokeMs, detail: `keys ${keys.map(Math.round).join(', ')} ms` },
        { scenario: 'dashboard', measure: `${CHANGES_PER_S} changes/s for ${durationS} s (page changes, leaves, joins): main thread busy; long tasks, longest`, value: `${round(busyPercent, 1)} %; ${during.length}, ${Math.round(longestDuring)} ms`, target: `≤ ${TARGETS.busyPercent} %; none over ${TARGETS.longTaskMs} ms`, pass: busyPercent <= TARGETS.busyPercent && longestDuring <= TARGETS.longTaskMs },
        { scenario: 'dashboard', measure: `page JS heap, largest sampled, ${online} online`, value: `${Math.round(heapMax)} MB`, target: `≤ ${TARGETS.heapMB} MB`, pass: heapMax <= TARGETS.heapMB, detail: `${round(heapAfterGc, 1)} MB after a forced collection` },
        { scenario: 'dashboard', measure: 'widget.js as served, gzipped', value: `${widgetGzip} B`, target: '' },
      ],
      data: { online, mainThreadTasks: tasks.length, resnapshots, firstPaintMs: firstPaint, loadLongestTaskMs: loadLongest, keystrokeMs: keys, busyPercent: round(busyPercent, 1), wallS: round(wallS, 1), changesSent: sent.requests, changesRate: round(sent.rps), longTasksMs: during, heapMB: heapSamples.map((mb) => round(mb, 1)), heapAfterGcMB: round(heapAfterGc, 1), widgetGzipBytes: widgetGzip, serverOnline },
    }
  } finally {
    await browser.close()
    await server.stop()
  }
}
