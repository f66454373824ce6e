/**
 * The consent snippet: served by GET /clients/cat_consent_js as
 * `(function(){var __CAT_L={…strings, version, locale};<this bundle>})();`.
 * Embedded as `<script src="https://PRESENCE/clients/cat_consent_js" data-token="CLIENT_JWT" defer>`.
 * The only global it defines is `window.CAT`; it talks to no server but its own.
 */

import { hideBanner, showBanner } from './banner'
import { createLoop, REQUEST } from './loop'

type Decision = 'granted' | 'denied' | 'withdrawn'

const L = __CAT_L
const PATH = '/clients/cat_consent_js'
const script = (document.currentScript ||
  [].slice.call(document.querySelectorAll('script[src*="' + PATH + '"]')).pop()) as HTMLScriptElement | undefined
const token = script && script.getAttribute('data-token')

if (token && !window.CAT) {
  const src = script!.src
  const cut = src.indexOf(PATH)
  // The server is where this script came from (a path prefix before /clients/… is kept).
  const base = cut < 0 ? new URL(src).origin : src.slice(0, cut)
  const gpc = navigator.globalPrivacyControl === true
  const loop = createLoop(base, token)
  // The decision on this text version, per browser: a new text finds nothing and asks again.
  // On a shared browser, after one person granted the next is asked again (the server has no
  // `granted` for them); after one declined, the next is not tracked until they turn it on.
  const KEY = 'cat.consent.' + L.version
  let state: CatStatus = 'unknown'
  // Decisions are posted one after another, so the ledger ends with the last one.
  let posted: Promise<unknown> = Promise.resolve()

  /**
   * Sets the state, remembers it (not under GPC: turning GPC off asks again), and mounts or
   * updates the control in every `[data-cat-control]`, also in ones added since.
   */
  const sync = (next: CatStatus): void => {
    state = next
    try {
      if (gpc) {
        // remember nothing
      } else if (next == 'unknown') localStorage.removeItem(KEY)
      else localStorage.setItem(KEY, next)
    } catch {
      // storage disabled: the banner asks again next time
    }
    document.querySelectorAll('[data-cat-control]').forEach((el) => {
      try {
        let root = el.shadowRoot
        if (!root) {
          // delegatesFocus: focus given back to the host lands on the button.
          root = el.attachShadow({ mode: 'open', delegatesFocus: true })
          root.innerHTML = '<style>button{font:inherit}</style><button></button>'
          ;(root.lastChild as HTMLElement).onclick = () => (state == 'granted' ? CAT.withdraw() : open())
        }
        const button = root.lastChild as HTMLButtonElement
        button.textContent = state == 'granted' ? L.controlOn : L.controlOff
        button.title = L.controlLabel
        button.disabled = gpc
      } catch {
        // an element that cannot hold a shadow root
      }
    })
  }

  const decide = (decision: Decision): void => {
    hideBanner()
    sync(decision)
    if (decision != 'granted') loop.stop()
    const body = JSON.stringify({ token, decision, version: L.version, locale: L.locale })
    // A string body goes as text/plain: no preflight. The loop starts once the server has it.
    // A server shedding load (503) or limiting (429) gets the decision again after its
    // Retry-After, so a click on a busy server is not lost.
    const post = (): Promise<unknown> =>
      fetch(base + '/clients/cat_consent', { ...REQUEST, method: 'POST', keepalive: true, body }).then((res) =>
        res.status == 503 || res.status == 429
          ? new Promise((later) => setTimeout(later, +res.headers.get('Retry-After')! * 1e3 || 5e3)).then(post)
          : res.ok && state == 'granted' && loop.start(),
      )
    posted = posted.then(post).catch(() => {})
  }

  const open = (): void => {
    if (!gpc) showBanner(L, (yes) => decide(yes ? 'granted' : 'denied'))
  }

  const CAT: CatApi = (window.CAT = {
    withdraw() {
      if (state == 'granted' || state == 'unknown') decide('withdrawn')
    },
    grant() {
      if (!gpc && state != 'granted') decide('granted')
    },
    status: () => state,
  })

  const init = (): void => {
    let decision: Decision | null = null
    try {
      decision = localStorage.getItem(KEY) as Decision | null
    } catch {
      // storage disabled
    }
    if (gpc) {
      // Global Privacy Control is a refusal: no banner, no request.
      sync('denied')
    } else if (!decision) {
      // Nothing stored for this text (first visit, or the text changed): ask.
      sync('unknown')
      open()
    } else {
      sync(decision)
      // Granted here: the server must agree (same contact, same text) before any heartbeat.
      if (decision == 'granted')
        fetch(base + '/clients/cat_consent?token=' + encodeURIComponent(token), REQUEST)
          .then((res) => (res.ok ? res.json() : res.status == 404 ? {} : Promise.reject()))
          .then((found: { decision?: Decision; version?: string }) => {
            if (state != 'granted') return
            if (found.decision == 'granted' && found.version == L.version) loop.start()
            // The server's refusal counts.
            else if (found.decision && found.decision != 'granted') sync(found.decision)
            // No decision there, or one on another text: ask.
            else {
              sync('unknown')
              open()
            }
          })
          .catch(() => {})
    }
  }

  if (document.readyState == 'loading') document.addEventListener('DOMContentLoaded', init)
  else init()
}
