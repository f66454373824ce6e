/**
 * <cat-online-clients server="https://PRESENCE" token="ADMIN_JWT" lang="de" panel="settings">:
 * the live list of online contacts (a snapshot, then diffs, over the dashboard WebSocket), in a
 * shadow root, and for admin tokens the settings panel (`panel="settings"` opens it).
 * The token comes from `element.tokenProvider` (a function, asked before each connect and each
 * REST call) or else the `token` attribute.
 */
import { Connection, type ConnectionState } from './connection'
import { Drawer } from './drawer'
import { SettingsPanel } from './settings'
import { LicensePanel } from './license-panel'
import { createI18n, pickLang, type I18n } from './i18n'
import { renderSparkline } from './sparkline'
import { OnlineState, type Changes } from './state'
import { STYLES } from './styles'
import type { Presence, StatsResponse } from './types'

export type TokenProvider = () => string | null | undefined | Promise<string | null | undefined>

/** Where this script came from: the default server. */
const SCRIPT_ORIGIN = ((): string => {
  const script = document.currentScript as HTMLScriptElement | null
  try {
    if (script?.src) return new URL(script.src).origin
  } catch {
    // fall through
  }
  return location.origin
})()

/**
 * The role claim of an admin token, read without verifying it (the server checks every request):
 * it only decides whether the settings and the licence key entry are offered. Absent means admin.
 */
function tokenRole(token: string | null): 'admin' | 'staff' | null {
  if (!token) return null
  try {
    const payload = JSON.parse(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/'))) as { role?: unknown }
    return payload.role === 'staff' ? 'staff' : 'admin'
  } catch {
    return null
  }
}

const HIGHLIGHT_MS = 4000
const STATS_EVERY_MS = 5 * 60_000

interface Row {
  presence: Presence
  /** Lower-cased name and company, for the filter. */
  key: string
  li: HTMLLIElement
  button: HTMLButtonElement
  name: HTMLElement
  company: HTMLElement
  title: HTMLElement
  path: HTMLElement
  badge: HTMLElement
  tabs: HTMLElement
  dur: HTMLElement
  seen: HTMLElement
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' })

/** Display order: newest presence first; ties by name, then id, so the order is stable. */
function compare(a: Presence, b: Presence): number {
  if (a.since !== b.since) return b.since - a.since
  return collator.compare(a.name, b.name) || (a.contactId < b.contactId ? -1 : a.contactId > b.contactId ? 1 : 0)
}

export class OnlineClientsElement extends HTMLElement {
  static get observedAttributes(): string[] {
    return ['server', 'token', 'lang', 'panel']
  }

  private provider: TokenProvider | null = null
  private readonly shadow: ShadowRoot
  private i18n: I18n = createI18n('en', 'en')
  private readonly state = new OnlineState()
  private readonly rows = new Map<string, Row>()
  /** Rows in display order (newest first). */
  private order: Row[] = []
  private readonly onScreen = new Set<Row>()
  private observer: IntersectionObserver | null = null
  private connection: Connection | null = null
  private connState: ConnectionState = { kind: 'loading' }
  /** Server clock minus browser clock, from the last message's `at`. */
  private skew = 0
  private filter = ''
  private ticker: ReturnType<typeof setInterval> | undefined
  private statsTimer: ReturnType<typeof setInterval> | undefined
  private drawer: Drawer | null = null
  private settings: SettingsPanel | null = null
  /** The token's role, once read: the settings are offered to `admin` only. */
  private accessRole: 'admin' | 'staff' | null = null
  private license: LicensePanel | null = null
  private licenseButton: HTMLButtonElement | null = null
  private ui: {
    wrap: HTMLElement
    count: HTMLElement
    conn: HTMLElement
    filter: HTMLInputElement
    notice: HTMLElement
    banner: HTMLElement
    bannerText: HTMLElement
    shown: HTMLElement
    head: HTMLElement
    list: HTMLUListElement
    sparks: { svg: SVGSVGElement; caption: HTMLElement; range: '1h' | '24h' }[]
    settingsButton: HTMLButtonElement
  } | null = null

  constructor() {
    super()
    this.shadow = this.attachShadow({ mode: 'open' })
  }

  /** A function returning the admin token (or a promise of it); asked before each connect and REST call. */
  get tokenProvider(): TokenProvider | null {
    return this.provider
  }

  set tokenProvider(value: TokenProvider | null) {
    this.provider = typeof value === 'function' ? value : null
    if (this.connection) this.connection.reconnectNow()
    void this.checkRole()
  }

  /** Connects again now (e.g. after the host page got a new token). */
  reconnect(): void {
    this.connection?.reconnectNow()
    void this.checkRole()
  }

  get server(): string {
    return (this.getAttribute('server') || SCRIPT_ORIGIN).replace(/\/+$/, '')
  }

  connectedCallback(): void {
    // A tokenProvider set before this element was upgraded is an own property: move it to the setter.
    if (Object.prototype.hasOwnProperty.call(this, 'tokenProvider')) {
      const value = (this as unknown as { tokenProvider: TokenProvider | null }).tokenProvider
      delete (this as unknown as { tokenProvider?: unknown }).tokenProvider
      this.provider = typeof value === 'function' ? value : null
    }
    this.render()
    this.startConnection()
    this.ticker = setInterval(() => this.tick(), 1000)
  }

  disconnectedCallback(): void {
    this.connection?.stop()
    this.connection = null
    clearInterval(this.ticker)
    clearInterval(this.statsTimer)
    this.observer?.disconnect()
  }

  attributeChangedCallback(name: string, previous: string | null, next: string | null): void {
    if (previous === next || !this.ui) return
    if (name === 'lang') this.render()
    else if (name === 'server') this.startConnection()
    else if (name === 'panel') this.showPanel()
    else if (name === 'token' && !this.provider) {
      this.connection?.reconnectNow()
      void this.checkRole()
    }
  }

  /** Reads the token's role: the settings button and panel are for admin tokens only. */
  private async checkRole(): Promise<void> {
    this.accessRole = tokenRole(await this.token())
    // For the host page's styles (and the tests): what the settings were decided on.
    this.setAttribute('data-role', this.accessRole ?? 'none')
    this.showPanel()
  }

  /** The settings button for admins, and the panel open when `panel="settings"` asks for it. */
  private showPanel(): void {
    if (!this.ui || !this.settings) return
    const admin = this.accessRole === 'admin'
    this.ui.settingsButton.hidden = !admin
    if (!admin) this.settings.hide()
    else if (this.getAttribute('panel') === 'settings') this.settings.show()
    this.ui.settingsButton.setAttribute('aria-expanded', String(this.settings.open))
  }

  private toggleSettings(): void {
    if (!this.settings || !this.ui) return
    if (this.settings.open) this.settings.hide()
    else this.settings.show()
    this.ui.settingsButton.setAttribute('aria-expanded', String(this.settings.open))
  }

  /** A REST call with the token: the status and the parsed JSON body (null when none). */
  private async request(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const token = await this.token()
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(this.server + path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) })
    let parsed: unknown = null
    try {
      parsed = await res.json()
    } catch {
      // no JSON body
    }
    return { status: res.status, body: parsed }
  }

  private async token(): Promise<string | null> {
    const value = this.provider ? await this.provider() : this.getAttribute('token')
    return value ? String(value) : null
  }

  private async get<T>(path: string): Promise<T> {
    const token = await this.token()
    const res = await fetch(this.server + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    return (await res.json()) as T
  }

  /** The token's role claim, read (not verified: the server does that) to offer changes to admins only. */
  private async tokenRole(): Promise<'admin' | 'staff' | null> {
    return tokenRole(await this.token())
  }

  private startConnection(): void {
    this.connection?.stop()
    this.connection = new Connection({
      server: this.server,
      getToken: () => this.token(),
      onState: (state) => this.setConnState(state),
      onSnapshot: (message) => {
        this.skew = message.at - Date.now()
        const started = performance.now()
        this.apply(this.state.applySnapshot(message.online))
        const applied = performance.now()
        // For the host page (and the tests): a snapshot is on screen, and what it cost.
        this.dispatchEvent(new CustomEvent('cat-snapshot', { detail: { online: this.state.size, receivedAt: started, renderMs: applied - started } }))
      },
      onDiff: (message) => {
        this.skew = message.at - Date.now()
        this.apply(this.state.applyDiff(message))
      },
    })
    this.connection.start()
  }

  /** Builds the shadow DOM for the current language, and fills it from the state. */
  private render(): void {
    const { lang, locale } = pickLang(this.getAttribute('lang'), document.documentElement.lang, navigator.language)
    const i18n = (this.i18n = createI18n(lang, locale))
    const t = i18n.t.bind(i18n)
    this.observer?.disconnect()
    this.drawer?.close()

    const style = el('style', undefined, STYLES)
    const wrap = el('div', 'w')
    wrap.lang = lang
    const top = el('div', 'top')
    const countBox = el('div', 'count')
    const heading = el('h2', undefined, t('heading'))
    const count = el('span', 'n', '–')
    countBox.append(heading, count, el('span', 'lbl', t('online')))
    const conn = el('span', 'conn')
    conn.setAttribute('role', 'status')
    const sparksBox = el('div', 'sparks')
    const sparks = (['1h', '24h'] as const).map((range) => {
      const figure = el('figure')
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
      svg.setAttribute('role', 'img')
      const caption = el('figcaption', undefined, t(range === '1h' ? 'sparkHour' : 'sparkDay'))
      figure.append(svg, caption)
      sparksBox.append(figure)
      return { svg, caption, range }
    })
    const label = el('label', 'filter')
    const filter = el('input')
    filter.type = 'search'
    filter.placeholder = t('filterPlaceholder')
    filter.value = this.filter
    filter.autocomplete = 'off'
    filter.addEventListener('input', () => this.setFilter(filter.value))
    label.append(el('span', undefined, t('filterLabel')), filter)
    const settingsButton = el('button', 'gear', t('settings'))
    settingsButton.type = 'button'
    settingsButton.hidden = true
    settingsButton.setAttribute('part', 'settings-button')
    settingsButton.setAttribute('aria-controls', 'settings')
    settingsButton.onclick = () => this.toggleSettings()
    // Shown once the server says licensing is on.
    const licenseButton = el('button', 'licbtn', t('licenseButton'))
    licenseButton.type = 'button'
    licenseButton.hidden = true
    licenseButton.setAttribute('aria-expanded', 'false')
    licenseButton.onclick = () => {
      this.license?.show(!this.license.open)
      licenseButton.setAttribute('aria-expanded', String(this.license?.open === true))
    }
    top.append(countBox, conn, sparksBox, label, licenseButton, settingsButton)
    const license = new LicensePanel(i18n, {
      request: (method, path, body) => this.request(method, path, body),
      role: () => this.tokenRole(),
      onActivated: () => this.connection?.reconnectNow(),
      onState: (view) => {
        licenseButton.hidden = !view.enabled
        licenseButton.dataset.state = view.state
      },
    })
    const reopenLicense = this.license?.open === true
    this.license = license
    this.licenseButton = licenseButton

    const banner = el('div', 'banner')
    banner.setAttribute('role', 'alert')
    const bannerText = el('span')
    const retry = el('button', undefined, t('reconnectNow'))
    retry.type = 'button'
    retry.onclick = () => this.connection?.reconnectNow()
    banner.append(bannerText, retry)
    const notice = el('div', 'notice')
    notice.setAttribute('role', 'status')
    const shown = el('div', 'shown')
    const head = el('div', 'head grid')
    head.setAttribute('aria-hidden', 'true')
    for (const key of ['colContact', 'colPage', 'colState', 'colSession', 'colLastSeen'] as const) head.append(el('span', undefined, t(key)))
    const list = el('ul')
    list.setAttribute('aria-label', t('heading'))

    this.drawer = new Drawer(i18n, { get: (path) => this.get(path) })
    const reopen = this.settings?.open ?? false
    this.settings = new SettingsPanel(i18n, { request: (method, path, body) => this.request(method, path, body) })
    wrap.append(top, license.element, this.settings.element, banner, shown, head, notice, list)
    if (reopenLicense) license.show(true)
    this.shadow.replaceChildren(style, wrap, this.drawer.element)
    this.ui = { wrap, count, conn, filter, notice, banner, bannerText, shown, head, list, sparks, settingsButton }
    if (reopen && this.accessRole === 'admin') this.settings.show()
    void this.checkRole()

    this.observer = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const row = this.rowOf(entry.target)
          if (!row) continue
          if (entry.isIntersecting) {
            this.onScreen.add(row)
            this.paintTimes(row, Date.now() + this.skew)
          } else this.onScreen.delete(row)
        }
      }, { rootMargin: '200px 0px' })
      : null
    // Rows are rebuilt in the new language.
    this.rows.clear()
    this.onScreen.clear()
    this.order = []
    this.apply({ removed: [], upserted: [...this.state.byId.values()], joined: new Set() })
    this.setConnState(this.connState)
    this.renderSparks(null)
  }

  private rowOf(target: Element): Row | undefined {
    const id = (target as HTMLElement).dataset.id
    return id === undefined ? undefined : this.rows.get(id)
  }

  private setConnState(state: ConnectionState): void {
    const previous = this.connState
    this.connState = state
    this.setAttribute('data-state', state.kind)
    if (!this.ui) return
    const { i18n } = this
    this.ui.wrap.dataset.state = state.kind
    const refusedText = state.kind === 'refused' && state.reason === 'license' ? i18n.t('licenseRequired') : i18n.t('refused')
    this.ui.conn.textContent = state.kind === 'live' ? i18n.t('live') : state.kind === 'loading' ? i18n.t('loading') : state.kind === 'refused' ? refusedText : i18n.t('disconnected')
    if (state.kind === 'refused' && state.reason === 'license') {
      // What to do instead of "Access refused": the licence and, for admins, the key entry.
      if (!(previous.kind === 'refused' && previous.reason === 'license')) {
        this.license?.show(true)
        this.licenseButton?.setAttribute('aria-expanded', 'true')
      }
    } else if (state.kind === 'live' && previous.kind !== 'live') {
      // Learns whether licensing is on (the button) and shows a grace period's days left.
      void this.license?.refresh()
    }
    if (state.kind === 'refused') {
      // Refused: no data stays on screen.
      this.apply(this.state.applySnapshot([]))
      this.drawer?.close()
    }
    if (state.kind === 'live' && previous.kind !== 'live') {
      this.loadStats()
      clearInterval(this.statsTimer)
      this.statsTimer = setInterval(() => this.loadStats(), STATS_EVERY_MS)
    } else if (state.kind !== 'live') clearInterval(this.statsTimer)
    this.ui.banner.hidden = state.kind !== 'disconnected' || this.state.size === 0
    this.ui.bannerText.textContent = i18n.t('disconnected')
    this.refreshNotice()
  }

  /** The notice in place of the list: loading, refused, disconnected, empty, no match. */
  private refreshNotice(): void {
    if (!this.ui) return
    const { i18n } = this
    const { notice, count, shown, head } = this.ui
    const state = this.connState
    const size = this.state.size
    count.textContent = state.kind === 'refused' || (state.kind === 'loading' && size === 0) ? '–' : i18n.count(size)
    const visible = this.filter === '' ? size : this.order.reduce((n, row) => n + (row.li.hidden ? 0 : 1), 0)
    let title = ''
    let detail = ''
    if (state.kind === 'refused' && state.reason === 'license') {
      title = i18n.t('licenseRequired')
      detail = i18n.t('licenseRequiredDetail')
    } else if (state.kind === 'refused') {
      title = i18n.t('refused')
      detail = i18n.t(state.reason === 'origin' ? 'refusedOrigin' : 'refusedToken') + (state.stopped ? ` ${i18n.t('refusedStopped')}` : '')
    } else if (size === 0 && state.kind === 'loading') title = i18n.t('loading')
    else if (size === 0 && state.kind === 'disconnected') title = i18n.t('disconnected')
    else if (size === 0) title = i18n.t('empty')
    else if (visible === 0) title = i18n.t('noMatch')
    notice.replaceChildren()
    if (title) {
      notice.append(el('strong', undefined, title))
      if (detail) notice.append(el('span', undefined, detail))
    }
    notice.hidden = title === ''
    head.hidden = size === 0 || visible === 0
    shown.hidden = this.filter === '' || size === 0
    shown.textContent = i18n.t('shown', { shown: i18n.count(visible), total: i18n.count(size) })
  }

  private setFilter(value: string): void {
    this.filter = value.trim().toLowerCase()
    for (const row of this.order) row.li.hidden = !this.passesFilter(row)
    this.refreshNotice()
  }

  private passesFilter(row: Row): boolean {
    return this.filter === '' || row.key.includes(this.filter)
  }

  /** Applies one message's changes to the rows. */
  private apply(changes: Changes): void {
    if (!this.ui) return
    for (const id of changes.removed) this.removeRow(id)
    const many = changes.upserted.length > 50
    if (many) {
      // A snapshot: build what is new off-document, order everything once, then attach.
      for (const p of changes.upserted) this.upsertRow(p, changes.joined.has(p.contactId), false)
      this.order.sort((a, b) => compare(a.presence, b.presence))
      const fragment = document.createDocumentFragment()
      for (const row of this.order) fragment.append(row.li)
      this.ui.list.append(fragment)
    } else {
      for (const p of changes.upserted) this.upsertRow(p, changes.joined.has(p.contactId), true)
    }
    this.ui.banner.hidden = this.connState.kind !== 'disconnected' || this.state.size === 0
    this.refreshNotice()
  }

  private removeRow(id: string): void {
    const row = this.rows.get(id)
    if (!row) return
    this.rows.delete(id)
    this.onScreen.delete(row)
    this.observer?.unobserve(row.li)
    row.li.remove()
    const index = this.order.indexOf(row)
    if (index >= 0) this.order.splice(index, 1)
    if (this.drawer?.openFor === id) {
      // The drawer stays open: the log is still worth reading after the contact left.
    }
  }

  private upsertRow(p: Presence, highlight: boolean, place: boolean): void {
    let row = this.rows.get(p.contactId)
    const now = Date.now() + this.skew
    if (!row) {
      row = this.createRow(p)
      this.rows.set(p.contactId, row)
      this.observer?.observe(row.li)
      if (place) this.place(row)
      else this.order.push(row)
    } else {
      const moved = row.presence.since !== p.since
      row.presence = p
      if (moved && place) {
        this.order.splice(this.order.indexOf(row), 1)
        this.place(row)
      }
    }
    this.fill(row, now)
    row.li.hidden = !this.passesFilter(row)
    if (highlight) {
      const li = row.li
      li.classList.remove('new')
      // Restart the animation.
      void li.offsetWidth
      li.classList.add('new')
      setTimeout(() => li.classList.remove('new'), HIGHLIGHT_MS)
    }
  }

  /** Inserts the row where it belongs in the display order (binary search). */
  private place(row: Row): void {
    let low = 0
    let high = this.order.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (compare((this.order[mid] as Row).presence, row.presence) < 0) low = mid + 1
      else high = mid
    }
    this.order.splice(low, 0, row)
    this.ui?.list.insertBefore(row.li, this.order[low + 1]?.li ?? null)
  }

  /** One row's markup, cloned per contact (much cheaper than building each, for 5 000 rows). */
  private static template: HTMLLIElement | null = null

  private createRow(p: Presence): Row {
    if (!OnlineClientsElement.template) {
      const li = el('li')
      li.innerHTML = '<button type="button" class="row grid" aria-haspopup="dialog">'
        + '<span class="c"><span class="name"></span><span class="sub"></span></span>'
        + '<span class="c pg"><span class="pt"></span><span class="path"></span></span>'
        + '<span><span class="badge"></span><span class="tabs"></span></span>'
        + '<span class="dur num"></span><span class="seen num"></span></button>'
      OnlineClientsElement.template = li
    }
    const li = OnlineClientsElement.template.cloneNode(true) as HTMLLIElement
    li.dataset.id = p.contactId
    const button = li.firstChild as HTMLButtonElement
    const [who, page, stateCell, dur, seen] = Array.from(button.children) as HTMLElement[]
    const row: Row = {
      presence: p,
      key: '',
      li,
      button,
      name: who!.firstChild as HTMLElement,
      company: who!.lastChild as HTMLElement,
      title: page!.firstChild as HTMLElement,
      path: page!.lastChild as HTMLElement,
      badge: stateCell!.firstChild as HTMLElement,
      tabs: stateCell!.lastChild as HTMLElement,
      dur: dur!,
      seen: seen!,
    }
    button.onclick = () => this.drawer?.open(row.presence, button)
    return row
  }

  private fill(row: Row, now: number): void {
    const p = row.presence
    const { i18n } = this
    row.key = `${p.name}\n${p.company}`.toLowerCase()
    set(row.name, p.name || p.contactId)
    set(row.company, p.company)
    set(row.title, p.title || i18n.t('untitled'))
    set(row.path, p.path)
    row.title.title = p.title
    row.path.title = p.path
    set(row.badge, i18n.t(p.state))
    row.badge.className = `badge ${p.state}`
    set(row.tabs, p.tabs > 1 ? `×${p.tabs}` : '')
    row.tabs.title = p.tabs > 1 ? i18n.t('tabs', { n: p.tabs }) : ''
    if (this.onScreen.has(row) || !this.observer) this.paintTimes(row, now)
  }

  private paintTimes(row: Row, now: number): void {
    const p = row.presence
    set(row.dur, this.i18n.duration(now - p.since))
    set(row.seen, this.i18n.ago(now - p.lastSeen))
    row.seen.title = this.i18n.dateTime(p.lastSeen)
  }

  /** Once a second: session durations and "last seen" of the rows on screen tick on. */
  private tick(): void {
    const now = Date.now() + this.skew
    for (const row of this.onScreen) this.paintTimes(row, now)
  }

  private loadStats(): void {
    for (const range of ['1h', '24h'] as const) {
      this.get<StatsResponse>(`/admin/api/stats/online?range=${range}`)
        .then((stats) => this.renderSparks({ range, stats }))
        .catch(() => this.renderSparks({ range, stats: { points: [] } }))
    }
  }

  private lastStats: Partial<Record<'1h' | '24h', StatsResponse>> = {}

  private renderSparks(update: { range: '1h' | '24h'; stats: StatsResponse } | null): void {
    if (update) this.lastStats[update.range] = update.stats
    if (!this.ui) return
    const { i18n } = this
    const now = Date.now() + this.skew
    for (const spark of this.ui.sparks) {
      const stats = this.lastStats[spark.range]
      const name = i18n.t(spark.range === '1h' ? 'sparkHour' : 'sparkDay')
      if (!stats) {
        spark.caption.textContent = name
        continue
      }
      const span = spark.range === '1h' ? 3_600_000 : 86_400_000
      renderSparkline(spark.svg, stats.points, now - span, now)
      const peak = stats.points.reduce((m, p) => Math.max(m, p.online), 0)
      const summary = stats.points.length === 0 ? i18n.t('sparkEmpty') : i18n.t('sparkPeak', { n: i18n.count(peak) })
      spark.caption.textContent = `${name} · ${summary}`
      spark.svg.setAttribute('aria-label', `${name}: ${summary}`)
    }
  }
}

/** Writes text only when it changed (cheap for 5 000 rows). */
function set(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text
}
