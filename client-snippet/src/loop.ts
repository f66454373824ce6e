/**
 * The heartbeat loop. Runs only after consent; the server enforces that too
 * (a heartbeat without `granted` gets 403, which ends the loop for good).
 */

export interface Loop {
  start(): void
  /** Stops at once: no timer left, and an answer still in flight schedules nothing. */
  stop(): void
}

/** Every request: no cookies, no cache, no custom header (so no CORS preflight). */
export const REQUEST: RequestInit = { mode: 'cors', credentials: 'omit', cache: 'no-store' }

export function createLoop(base: string, token: string): Loop {
  // 12 random bytes are 16 base64 characters (+ and / made -): the tab's id.
  const sid = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(12)))).replace(/\W/g, '-')
  let on = false
  let wired = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let interval = 30
  let failures = 0
  // Numbers the requests: only the answer to the latest one schedules the next.
  let seq = 0
  // The path of the last `nav` sent: a navigation to the same path is not sent again.
  let last: string | undefined

  const hidden = (): boolean => document.visibilityState == 'hidden'
  const here = (): string => (location.pathname + location.search + location.hash).slice(0, 2048)
  const url = (event: string): string =>
    base + '/cat_heartbeat?' + new URLSearchParams({ token, sid, path: here(), title: document.title.slice(0, 512), event })

  const stop = (): void => {
    on = false
    clearTimeout(timer)
  }

  const send = (event: string): void => {
    clearTimeout(timer)
    const mine = ++seq
    // Sends `event` again after `after` seconds (the server's Retry-After), else after an
    // exponential backoff with full jitter: 1 s base, 5 min cap. Also schedules the next beat.
    const retry = (after?: unknown): void => {
      if (on && mine == seq) timer = setTimeout(send, +after! * 1e3 || Math.random() * Math.min(3e5, 1e3 * 2 ** failures++), event)
    }
    fetch(url(event), REQUEST).then((res) => {
      if (res.status == 401 || res.status == 403) return stop()
      if (!res.ok) return retry(res.headers.get('Retry-After'))
      failures = 0
      interval = +res.headers.get('CAT-Interval')! || interval
      // A beat every interval ±10 %, none while the tab is hidden.
      if (!hidden()) {
        event = 'beat'
        retry(interval * (0.9 + Math.random() / 5))
      }
    }, retry)
  }

  const nav = (): void => {
    const path = here()
    if (on && !hidden() && path != last) {
      last = path
      send('nav')
    }
  }
  // After pushState a router sets the title: read both a moment later.
  const later = (): void => {
    setTimeout(nav, 50)
  }

  const wire = (): void => {
    wired = true
    for (const name of ['pushState', 'replaceState'] as const) {
      const original = history[name]
      history[name] = function (this: History, ...args: Parameters<History['pushState']>) {
        original.apply(this, args)
        later()
      }
    }
    addEventListener('popstate', later)
    addEventListener('hashchange', later)
    document.addEventListener('visibilitychange', () => {
      if (!on) return
      if (hidden()) send('hidden')
      else if (here() != last) nav()
      else send('visible')
    })
    // A pending beat stays: back from the back/forward cache, it joins again.
    addEventListener('pagehide', () => {
      if (on) navigator.sendBeacon(url('leave'))
    })
  }

  return {
    start() {
      if (on) return
      on = true
      last = undefined
      if (!wired) wire()
      nav()
    },
    stop,
  }
}
