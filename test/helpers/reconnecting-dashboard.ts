/**
 * A dashboard client for Node that keeps its connection as the real one does
 * (dashboard/src/connection.ts): a snapshot replaces the state, a diff with the next `seq`
 * patches it (`left` first, then `joined`, then `updated`), a gap asks for a resync; after 1012
 * it reconnects at once, after any other close (or a refused upgrade) with the same jittered
 * backoff, 1 s doubling to 30 s. It records every close and every snapshot, so a test can tell
 * how long each reconnect took.
 */
import WebSocket from 'ws'

export interface PresenceView {
  contactId: string
  path: string
  tabs: number
  [key: string]: unknown
}

interface Snapshot {
  type: 'snapshot'
  seq: number
  online: PresenceView[]
}

interface Diff {
  type: 'diff'
  seq: number
  joined: PresenceView[]
  updated: PresenceView[]
  left: { contactId: string }[]
}

export interface CloseRecord {
  code: number
  /** performance.now() when the socket closed. */
  at: number
  /** performance.now() of the next snapshot, once one came. */
  liveAgainAt?: number
}

/** The dashboard's backoff (dashboard/src/connection.ts backoffMs): base/2 … base, base 1 s doubling to 30 s. */
function backoffMs(attempt: number): number {
  const base = Math.min(30_000, 1000 * 2 ** attempt)
  return Math.round(base / 2 + (Math.random() * base) / 2)
}

export interface ReconnectingDashboard {
  /** The online contacts as this dashboard holds them. */
  readonly state: ReadonlyMap<string, PresenceView>
  readonly closes: readonly CloseRecord[]
  /** performance.now() of every snapshot. */
  readonly snapshots: readonly number[]
  /** Every message that was not valid JSON of a known type, or a socket error after open. */
  readonly oddities: readonly string[]
  /** True while a socket is open and its snapshot has come. */
  live(): boolean
  /** Resolves once `check` holds (checked after every message and close); rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs: number): Promise<void>
  stop(): Promise<void>
}

/** Connects to `url` (ws://…/admin/ws?token=…), sending `origin` as a browser would, and resolves after the first snapshot. */
export async function openReconnectingDashboard(url: string, origin: string, timeoutMs = 5000): Promise<ReconnectingDashboard> {
  const state = new Map<string, PresenceView>()
  const closes: CloseRecord[] = []
  const snapshots: number[] = []
  const oddities: string[] = []
  const wakers = new Set<() => void>()
  let socket: WebSocket | undefined
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let attempt = 0
  let seq = 0
  let waitingForSnapshot = true
  let isLive = false
  const wake = (): void => {
    for (const w of wakers) w()
  }

  const connect = (): void => {
    if (stopped) return
    const current = new WebSocket(url, { origin })
    socket = current
    waitingForSnapshot = true
    let gotSnapshot = false
    current.on('message', (data) => {
      let message: Snapshot | Diff
      try {
        message = JSON.parse(data.toString()) as Snapshot | Diff
      } catch {
        oddities.push(`not JSON: ${data.toString().slice(0, 100)}`)
        return
      }
      if (message.type === 'snapshot') {
        gotSnapshot = true
        isLive = true
        attempt = 0
        seq = message.seq
        waitingForSnapshot = false
        state.clear()
        for (const p of message.online) state.set(p.contactId, p)
        const at = performance.now()
        snapshots.push(at)
        const last = closes.at(-1)
        if (last !== undefined && last.liveAgainAt === undefined) last.liveAgainAt = at
      } else if (message.type === 'diff') {
        if (waitingForSnapshot) return
        if (message.seq !== seq + 1) {
          waitingForSnapshot = true
          current.send('{"type":"resync"}')
          return
        }
        seq = message.seq
        for (const l of message.left) state.delete(l.contactId)
        for (const p of message.joined) state.set(p.contactId, p)
        for (const p of message.updated) state.set(p.contactId, p)
      } else {
        oddities.push(`unknown message: ${JSON.stringify(message).slice(0, 100)}`)
      }
      wake()
    })
    // A refused upgrade ends in 'close' too (code 1006); errors are seen there.
    current.on('error', () => undefined)
    current.on('close', (code) => {
      isLive = false
      if (stopped) return
      // A socket refused before its snapshot is not a closed dashboard: only the first close
      // after a live stretch starts a reconnect that is timed.
      if (gotSnapshot) closes.push({ code, at: performance.now() })
      wake()
      if (gotSnapshot && code === 1012) {
        attempt = 0
        connect()
        return
      }
      timer = setTimeout(connect, backoffMs(attempt++))
    })
  }

  const until = (what: string, check: () => boolean, ms: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const waker = (): void => {
        if (!check()) return
        clearTimeout(deadline)
        wakers.delete(waker)
        resolve()
      }
      const deadline = setTimeout(() => {
        wakers.delete(waker)
        reject(new Error(`${what}: not within ${ms} ms`))
      }, ms)
      wakers.add(waker)
      waker()
    })

  connect()
  await until('the first snapshot', () => isLive, timeoutMs)
  return {
    state,
    closes,
    snapshots,
    oddities,
    live: () => isLive,
    until,
    async stop() {
      stopped = true
      clearTimeout(timer)
      const current = socket
      if (current === undefined || current.readyState === WebSocket.CLOSED) return
      const closed = new Promise((resolve) => current.once('close', resolve))
      current.close(1000)
      await closed
    },
  }
}
