/**
 * The dashboard's WebSocket to GET /admin/ws: snapshot, then diffs by `seq`; a gap asks for a
 * resync; reconnects with jittered exponential backoff (1 s → 30 s), at once after 1012.
 *
 * A browser is not told why an upgrade was refused (the socket just closes), so a socket that
 * closes before its first snapshot is followed by one small authenticated REST request that
 * tells a refusal (401/403, 402 for the licence, or an origin the server does not allow) from a
 * server that is down.
 */
import type { DiffMessage, SnapshotMessage } from './types'

export type ConnectionState =
  | { kind: 'loading' }
  | { kind: 'live' }
  | { kind: 'disconnected'; retryInMs: number }
  | { kind: 'refused'; reason: 'token' | 'origin'; stopped: boolean }
  /** 402 license_required: the licence is neither active nor in grace; retried with backoff, at once after an activation (reconnectNow). */
  | { kind: 'refused'; reason: 'license'; stopped: false; message: string }

export interface ConnectionOptions {
  server: string
  /** Called before each (re)connect; null: no token (refused until reconnectNow); a rejection: retried with backoff. */
  getToken(): Promise<string | null>
  onState(state: ConnectionState): void
  onSnapshot(message: SnapshotMessage): void
  onDiff(message: DiffMessage): void
}

const BASE_MS = 1000
const MAX_MS = 30_000
/** After this many 401s in a row (each with a freshly asked token) the widget stops trying. */
const MAX_UNAUTHORIZED = 2
/**
 * `lastSeen` is exact in snapshots only; a fresh one now and then keeps "last seen" honest: every
 * minute, and a minute more per 10 000 online, as a large snapshot is tens of megabytes to send
 * and a long task of the browser's main thread to read.
 */
export const REFRESH_MS = 60_000
export const REFRESH_PER = 10_000

export function refreshAfterMs(online: number): number {
  return REFRESH_MS * Math.max(1, Math.ceil(online / REFRESH_PER))
}

/** Full-range jitter in the upper half: base/2 … base, base doubling from 1 s to 30 s. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_MS, BASE_MS * 2 ** attempt)
  return Math.round(base / 2 + (random() * base) / 2)
}

export class Connection {
  private socket: WebSocket | null = null
  private timer: ReturnType<typeof setTimeout> | undefined
  private refresh: ReturnType<typeof setTimeout> | undefined
  private attempt = 0
  private unauthorized = 0
  private seq = 0
  private waitingForSnapshot = true
  private stopped = true
  private generation = 0
  private everLive = false

  constructor(private readonly options: ConnectionOptions) {}

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.options.onState({ kind: 'loading' })
    void this.connect()
  }

  stop(): void {
    this.stopped = true
    this.generation++
    clearTimeout(this.timer)
    clearTimeout(this.refresh)
    const socket = this.socket
    this.socket = null
    if (socket) socket.close(1000)
  }

  /** Drops any wait and connects now (a new token, the "Reconnect now" button, back online). */
  reconnectNow(): void {
    this.stop()
    this.attempt = 0
    this.unauthorized = 0
    this.stopped = false
    this.options.onState(this.everLive ? { kind: 'disconnected', retryInMs: 0 } : { kind: 'loading' })
    void this.connect()
  }

  /** Asks the server for a fresh snapshot; diffs are ignored until it comes. */
  resync(): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return
    this.waitingForSnapshot = true
    this.socket.send('{"type":"resync"}')
  }

  private url(path: string): string {
    return this.options.server.replace(/\/+$/, '') + path
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation
    clearTimeout(this.timer)
    let token: string | null
    try {
      token = await this.options.getToken()
    } catch {
      // The host page's provider failed (its own refresh request, say): try again later.
      if (generation === this.generation) this.retry(generation, { kind: 'disconnected', retryInMs: 0 })
      return
    }
    if (generation !== this.generation) return
    if (!token) {
      // Nothing to try with: refused until the host page gives a token (reconnectNow).
      this.stopped = true
      this.options.onState({ kind: 'refused', reason: 'token', stopped: true })
      return
    }
    let socket: WebSocket
    try {
      socket = new WebSocket(`${this.url('/admin/ws').replace(/^http/, 'ws')}?token=${encodeURIComponent(token)}`)
    } catch {
      this.retry(generation, { kind: 'disconnected', retryInMs: 0 })
      return
    }
    this.socket = socket
    this.waitingForSnapshot = true
    let gotSnapshot = false

    socket.onmessage = (event) => {
      if (generation !== this.generation) return
      let message: SnapshotMessage | DiffMessage
      try {
        message = JSON.parse(String(event.data)) as SnapshotMessage | DiffMessage
      } catch {
        return
      }
      if (message.type === 'snapshot') {
        gotSnapshot = true
        this.everLive = true
        this.seq = message.seq
        this.waitingForSnapshot = false
        this.attempt = 0
        this.unauthorized = 0
        this.options.onState({ kind: 'live' })
        this.options.onSnapshot(message)
        clearTimeout(this.refresh)
        this.refresh = setTimeout(() => this.resync(), refreshAfterMs(message.online.length))
      } else if (message.type === 'diff') {
        if (this.waitingForSnapshot) return
        if (message.seq !== this.seq + 1) {
          // A gap: what we hold may be wrong. Ask for the whole state again.
          this.resync()
          return
        }
        this.seq = message.seq
        this.options.onDiff(message)
      }
    }

    socket.onclose = (event) => {
      if (generation !== this.generation) return
      this.socket = null
      clearTimeout(this.refresh)
      if (this.stopped) return
      if (gotSnapshot) {
        // 1012: the instance is restarting; another one (or it, soon) answers at once.
        if (event.code === 1012) {
          this.attempt = 0
          this.options.onState({ kind: 'disconnected', retryInMs: 0 })
          void this.connect()
          return
        }
        this.retry(generation, { kind: 'disconnected', retryInMs: 0 })
        return
      }
      // Closed before the first snapshot: refused, or nobody there? Ask once over REST.
      void this.probe(token).then((verdict) => {
        if (generation !== this.generation) return
        if (verdict === 'unauthorized') {
          this.unauthorized++
          if (this.unauthorized >= MAX_UNAUTHORIZED) {
            this.stopped = true
            this.options.onState({ kind: 'refused', reason: 'token', stopped: true })
            return
          }
          this.retry(generation, { kind: 'refused', reason: 'token', stopped: false })
        } else if (verdict === 'forbidden') {
          this.retry(generation, { kind: 'refused', reason: 'origin', stopped: false })
        } else if (typeof verdict === 'object') {
          this.retry(generation, { kind: 'refused', reason: 'license', stopped: false, message: verdict.license })
        } else {
          this.retry(generation, { kind: 'disconnected', retryInMs: 0 })
        }
      })
    }

  }

  /** Waits the next backoff step, showing `state` meanwhile, then connects again. */
  private retry(generation: number, state: ConnectionState): void {
    if (generation !== this.generation || this.stopped) return
    const delay = backoffMs(this.attempt++)
    this.options.onState(state.kind === 'disconnected' ? { kind: 'disconnected', retryInMs: delay } : state)
    this.timer = setTimeout(() => void this.connect(), delay)
  }

  /** Why did the upgrade fail? One authenticated REST request answers it. */
  private async probe(token: string): Promise<'unauthorized' | 'forbidden' | 'down' | 'ok' | { license: string }> {
    try {
      const res = await fetch(this.url('/admin/api/stats/online?range=1h'), { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
      if (res.status === 401) return 'unauthorized'
      if (res.status === 403) return 'forbidden'
      if (res.status === 402) {
        const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null
        return { license: body?.error?.message ?? '' }
      }
      return res.ok ? 'ok' : 'down'
    } catch {
      // A CORS refusal looks like a network error; a no-cors request tells them apart.
      try {
        await fetch(this.url('/healthz'), { mode: 'no-cors', cache: 'no-store' })
        return 'forbidden'
      } catch {
        return 'down'
      }
    }
  }
}
