/**
 * <cat-online-clients server="https://PRESENCE" token="ADMIN_JWT" lang="de" panel="settings">:
 * the live list of online contacts (a snapshot, then diffs, over the dashboard WebSocket), in a
 * shadow root: only the rows in view are in the document, a search by name, company or page
 * narrows it, and the contacts are counted by company and by page; for admin tokens the
 * settings panel (`panel="settings"` opens it).
 *
 * A message changes the model (state.ts: the contacts in display order, the group counts), patched
 * per change; the screen follows once per animation frame, however many messages came, so a
 * stream of diffs costs the main thread what it changes plus one repaint of the rows in view.
 * The token comes from `element.tokenProvider` (a function, asked before each connect and each
 * REST call) or else the `token` attribute.
 */
import { Connection, type ConnectionState } from './connection'
import { Drawer } from './drawer'
import { SettingsPanel } from './settings'
import { LicensePanel } from './license-panel'
import { createI18n, pickLang, type I18n } from './i18n'
import { renderSparkline } from './sparkline'
import { OnlineState, firstInOrder, groupKey, insertSorted, removeSorted, type Changes, type Entry, type Group, type GroupKind } from './state'
import { STYLES } from './styles'
import { GroupsView } from './groups'
import { VirtualList, type ListRow } from './virtual-list'
import type { DiffMessage, StatsResponse } from './types'

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
/** Search keys made per idle callback after a snapshot. */
const SEARCH_SLICE = 5000
/** Rows of a large first snapshot shown before the rest of it is sorted: more than a screenful. */
const FIRST_ROWS = 60
const STATS_EVERY_MS = 5 * 60_000

interface Row extends ListRow {
  name: HTMLElement
  company: HTMLElement
  title: HTMLElement
  path: HTMLElement
  badge: HTMLElement
  tabs: HTMLElement
  dur: HTMLElement
  seen: HTMLElement
  /** The contact whose join highlight this element shows, if any. */
  highlighted: string | null
}

/** What the list shows: everyone, or those of one company or on one page. */
interface GroupFilter {
  kind: GroupKind
  key: string
  label: string
}

type Mode = 'list' | GroupKind

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

export class OnlineClientsElement extends HTMLElement {
  static get observedAttributes(): string[] {
    return ['server', 'token', 'lang', 'panel']
  }

  private provider: TokenProvider | null = null
  private readonly shadow: ShadowRoot
  private i18n: I18n = createI18n('en', 'en')
  private readonly state = new OnlineState()
  /** What the list shows, in display order: the state's own order when nothing narrows it. */
  private view: Entry[] = this.state.order
  private list: VirtualList<Row> | null = null
  private groupsView: GroupsView | null = null
  private mode: Mode = 'list'
  private group: GroupFilter | null = null
  /** Contacts highlighted as new, until when (browser clock). */
  private readonly highlights = new Map<string, number>()
  private frame = 0
  /** A snapshot applied but not yet on screen: announced (`cat-snapshot`) once painted. */
  private snapshotPending: { online: number; receivedAt: number; renderMs: number } | null = null
  /** A snapshot received and not yet applied; the diffs received since, in order (null: none waits). */
  private snapshotTimer: ReturnType<typeof setTimeout> | undefined
  private snapshotFrame = 0
  /** The first rows of a snapshot not yet applied, shown meanwhile, and how many it holds. */
  private provisional: { first: Entry[]; total: number } | null = null
  private queued: DiffMessage[] | null = null
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
    views: Record<Mode, HTMLButtonElement>
    chip: HTMLElement
    chipText: HTMLElement
    notice: HTMLElement
    banner: HTMLElement
    bannerText: HTMLElement
    shown: HTMLElement
    head: HTMLElement
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
    clearTimeout(this.snapshotTimer)
    cancelAnimationFrame(this.snapshotFrame)
    this.queued = null
    this.provisional = null
    this.connection?.stop()
    this.connection = null
    clearInterval(this.ticker)
    clearInterval(this.statsTimer)
    cancelAnimationFrame(this.frame)
    this.frame = 0
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
        const receivedAt = performance.now()
        // Applied in a task of its own, after the one that parsed it: a keystroke or a click
        // waiting meanwhile is handled between the two. Diffs that come first wait behind it.
        // Into an empty list, the first rows are shown at once, before everything is sorted, and
        // the rest is applied after that frame.
        clearTimeout(this.snapshotTimer)
        cancelAnimationFrame(this.snapshotFrame)
        this.queued = []
        const first = this.state.size === 0 && message.online.length > FIRST_ROWS ? firstInOrder(message.online, FIRST_ROWS) : null
        if (first) {
          this.provisional = { first, total: message.online.length }
          this.snapshotPending = { online: message.online.length, receivedAt, renderMs: 0 }
          this.paint()
        }
        const later = (fn: () => void): void => {
          // A hidden page draws no frames: there the rest follows at once, not when it is shown.
          if (!first || document.visibilityState === 'hidden') this.snapshotTimer = setTimeout(fn, 0)
          else this.snapshotFrame = requestAnimationFrame(() => (this.snapshotTimer = setTimeout(fn, 0)))
        }
        later(() => {
          this.provisional = null
          const started = performance.now()
          this.apply(this.state.applySnapshot(message.online))
          if (!first) this.snapshotPending = { online: this.state.size, receivedAt, renderMs: performance.now() - started }
          const queued = this.queued ?? []
          this.queued = null
          for (const diff of queued) this.apply(this.state.applyDiff(diff))
          this.prepareSearch(this.state.order)
        })
      },
      onDiff: (message) => {
        this.skew = message.at - Date.now()
        if (this.queued) this.queued.push(message)
        else this.apply(this.state.applyDiff(message))
      },
    })
    this.connection.start()
  }

  /** Builds the shadow DOM for the current language, and fills it from the state. */
  private render(): void {
    const { lang, locale } = pickLang(this.getAttribute('lang'), document.documentElement.lang, navigator.language)
    const i18n = (this.i18n = createI18n(lang, locale))
    const t = i18n.t.bind(i18n)
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
    filter.value = this.filterInput
    filter.autocomplete = 'off'
    filter.addEventListener('input', () => this.setFilter(filter.value))
    label.append(el('span', undefined, t('filterLabel')), filter)
    // Everyone, or the counts by company or by page: a toggle of three pressed-or-not buttons.
    const viewsBox = el('div', 'views')
    viewsBox.setAttribute('role', 'group')
    viewsBox.setAttribute('aria-label', t('viewLabel'))
    const views = {} as Record<Mode, HTMLButtonElement>
    for (const [mode, key] of [['list', 'viewList'], ['company', 'viewCompany'], ['page', 'viewPage']] as const) {
      const button = el('button', 'vb', t(key))
      button.type = 'button'
      button.dataset.mode = mode
      button.onclick = () => this.setMode(mode)
      views[mode] = button
      viewsBox.append(button)
    }
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
    top.append(countBox, conn, sparksBox, label, viewsBox, licenseButton, settingsButton)
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
    const bar = el('div', 'bar')
    const shown = el('span', 'shown')
    shown.setAttribute('role', 'status')
    const chip = el('span', 'chip')
    const chipText = el('span')
    const clear = el('button', 'x', '×')
    clear.type = 'button'
    clear.setAttribute('aria-label', t('clearGroup'))
    clear.title = t('clearGroup')
    clear.onclick = () => this.setGroup(null)
    chip.append(chipText, clear)
    bar.append(chip, shown)
    const head = el('div', 'head grid')
    head.setAttribute('aria-hidden', 'true')
    for (const key of ['colContact', 'colPage', 'colState', 'colSession', 'colLastSeen'] as const) head.append(el('span', undefined, t(key)))
    const list = new VirtualList<Row>({
      label: t('heading'),
      hint: t('listHint'),
      create: () => this.createRow(),
      fill: (row, entry) => this.fill(row, entry, Date.now() + this.skew),
      lookup: (id) => this.state.byId.get(id),
      keep: () => this.drawer?.openFor ?? null,
    })
    this.list = list
    this.groupsView = new GroupsView(i18n, (kind, group) => this.pickGroup(kind, group))

    this.drawer = new Drawer(i18n, { get: (path) => this.get(path) })
    const reopen = this.settings?.open ?? false
    this.settings = new SettingsPanel(i18n, { request: (method, path, body) => this.request(method, path, body) })
    wrap.append(top, license.element, this.settings.element, banner, bar, head, notice, list.element, this.groupsView.element)
    if (reopenLicense) license.show(true)
    this.shadow.replaceChildren(style, wrap, this.drawer.element)
    this.ui = { wrap, count, conn, filter, views, chip, chipText, notice, banner, bannerText, shown, head, sparks, settingsButton }
    if (reopen && this.accessRole === 'admin') this.settings.show()
    void this.checkRole()

    this.setConnState(this.connState)
    this.renderSparks(null)
    this.paint()
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
      // Refused: no data stays on screen, nor comes later from a snapshot received before.
      clearTimeout(this.snapshotTimer)
      cancelAnimationFrame(this.snapshotFrame)
      this.queued = null
      this.provisional = null
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

  /** The notice in place of the list (loading, refused, disconnected, empty, no match), the count, the "shown" line. */
  private refreshNotice(): void {
    if (!this.ui) return
    const { i18n } = this
    const { notice, count, shown, head, chip, chipText, views } = this.ui
    const state = this.connState
    const size = this.provisional?.total ?? this.state.size
    count.textContent = state.kind === 'refused' || (state.kind === 'loading' && size === 0) ? '–' : i18n.count(size)
    const grouped = this.mode !== 'list'
    const visible = grouped ? this.groupsShown : this.provisional?.total ?? this.view.length
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
    if (notice.dataset.title !== title || notice.dataset.detail !== detail) {
      notice.dataset.title = title
      notice.dataset.detail = detail
      notice.replaceChildren()
      if (title) {
        notice.append(el('strong', undefined, title))
        if (detail) notice.append(el('span', undefined, detail))
      }
    }
    notice.hidden = title === ''
    head.hidden = grouped || size === 0 || visible === 0
    const narrowed = !grouped && (this.filter !== '' || this.group !== null)
    shown.hidden = !narrowed || size === 0
    setText(shown, narrowed ? i18n.t('shown', { shown: i18n.count(visible), total: i18n.count(size) }) : '')
    chip.hidden = this.group === null || grouped
    if (this.group) setText(chipText, i18n.t(this.group.kind === 'company' ? 'groupCompany' : 'groupPage', { name: this.group.label }))
    for (const [mode, button] of Object.entries(views)) button.setAttribute('aria-pressed', String(mode === this.mode))
    if (this.list) this.list.element.hidden = grouped || visible === 0
    if (this.groupsView) this.groupsView.element.hidden = !grouped || visible === 0
  }

  /** Groups matching the search at the last paint. */
  private groupsShown = 0

  /** The search box as typed, kept across a change of language. */
  private filterInput = ''

  private setFilter(value: string): void {
    this.filterInput = value
    const next = value.trim().toLowerCase()
    const narrower = this.filter !== '' && next.includes(this.filter)
    this.filter = next
    // A longer search only narrows what is listed: the list so far is searched, not everyone.
    this.refilter(narrower)
    this.list?.scrollToTop()
    this.paint()
  }

  private setMode(mode: Mode): void {
    this.mode = mode
    this.paint()
  }

  /** A group chosen in the counts: its contacts listed. */
  private pickGroup(kind: GroupKind, group: Group): void {
    this.filterInput = ''
    this.filter = ''
    if (this.ui) this.ui.filter.value = ''
    this.mode = 'list'
    this.setGroup({ kind, key: group.key, label: group.label })
    this.list?.focusIndex(0)
  }

  private setGroup(group: GroupFilter | null): void {
    this.group = group
    this.refilter(false)
    this.list?.scrollToTop()
    this.paint()
    if (!group) this.ui?.filter.focus()
  }

  private listed(entry: Entry): boolean {
    return (this.filter === '' || entry.key.includes(this.filter)) && (this.group === null || groupKey(this.group.kind, entry.p) === this.group.key)
  }

  /** Recomputes what the list shows: everyone (the state's order itself) or those matching. */
  private refilter(narrower: boolean): void {
    if (this.filter === '' && this.group === null) this.view = this.state.order
    else this.view = (narrower && this.view !== this.state.order ? this.view : this.state.order).filter((entry) => this.listed(entry))
  }

  /** Applies one message's changes to the model of the list; the screen follows at the next frame. */
  private apply(changes: Changes): void {
    if (changes.replaced) this.refilter(false)
    else if (this.view !== this.state.order) {
      // A narrowed list is patched entry by entry, as the state's order is.
      for (const { before, after } of changes.changed) {
        if (before && this.listed(before)) removeSorted(this.view, before)
        if (after && this.listed(after)) insertSorted(this.view, after)
      }
    }
    if (changes.joined.size > 0) {
      const until = performance.now() + HIGHLIGHT_MS
      for (const id of changes.joined) this.highlights.set(id, until)
    }
    this.schedulePaint()
  }

  private schedulePaint(): void {
    if (this.frame !== 0 || !this.ui) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.paint()
    })
  }

  /**
   * Makes the search keys of a snapshot's entries in idle time, a slice at a time, so the first
   * keystroke searches at once instead of making 100 000 of them then.
   */
  private prepareSearch(order: readonly Entry[], from = 0): void {
    const idle = typeof requestIdleCallback === 'function' ? requestIdleCallback : (fn: () => void) => setTimeout(fn, 50)
    idle(() => {
      if (order !== this.state.order || !this.isConnected) return
      const to = Math.min(order.length, from + SEARCH_SLICE)
      for (let i = from; i < to; i++) void (order[i] as Entry).key
      if (to < order.length) this.prepareSearch(order, to)
    })
  }

  /** Brings the screen up to date with the model: the count, the rows in view or the groups. */
  private paint(): void {
    if (!this.ui) return
    cancelAnimationFrame(this.frame)
    this.frame = 0
    const provisional = this.provisional
    if (provisional && this.mode === 'list') this.list?.render(provisional.first, provisional.total)
    else if (this.mode === 'list') this.list?.render(this.view)
    else if (this.groupsView) this.groupsShown = this.groupsView.render(this.mode, this.state.groups[this.mode], this.filter)
    this.ui.banner.hidden = this.connState.kind !== 'disconnected' || this.state.size === 0
    this.refreshNotice()
    const snapshot = this.snapshotPending
    if (snapshot) {
      this.snapshotPending = null
      // For the host page (and the tests, the bench): a snapshot is in the document, and what applying it cost.
      this.dispatchEvent(new CustomEvent('cat-snapshot', { detail: snapshot }))
    }
  }

  /** One row's markup, cloned per element (much cheaper than building each). */
  private static template: HTMLLIElement | null = null

  private createRow(): Row {
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
    const button = li.firstChild as HTMLButtonElement
    const [who, page, stateCell, dur, seen] = Array.from(button.children) as HTMLElement[]
    const row: Row = {
      id: null,
      entry: null,
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
      highlighted: null,
    }
    button.onclick = () => {
      if (row.entry) this.drawer?.open(row.entry.p, button)
    }
    return row
  }

  private fill(row: Row, entry: Entry, now: number): void {
    const p = entry.p
    const { i18n } = this
    setText(row.name, p.name || p.contactId)
    setText(row.company, p.company)
    setText(row.title, p.title || i18n.t('untitled'))
    setText(row.path, p.path)
    if (row.title.title !== p.title) row.title.title = p.title
    if (row.path.title !== p.path) row.path.title = p.path
    setText(row.badge, i18n.t(p.state))
    const badgeClass = `badge ${p.state}`
    if (row.badge.className !== badgeClass) row.badge.className = badgeClass
    setText(row.tabs, p.tabs > 1 ? `×${p.tabs}` : '')
    const tabsTitle = p.tabs > 1 ? i18n.t('tabs', { n: p.tabs }) : ''
    if (row.tabs.title !== tabsTitle) row.tabs.title = tabsTitle
    this.paintTimes(row, p, now)
    // The join highlight: on the element while it shows the contact that joined.
    const until = this.highlights.get(p.contactId)
    const lit = until !== undefined && until > performance.now() ? p.contactId : null
    if (lit !== row.highlighted) {
      row.highlighted = lit
      row.li.classList.toggle('new', lit !== null)
    }
  }

  private paintTimes(row: Row, p: Entry['p'], now: number): void {
    setText(row.dur, this.i18n.duration(now - p.since))
    setText(row.seen, this.i18n.ago(now - p.lastSeen))
    const seenTitle = this.i18n.dateTime(p.lastSeen)
    if (row.seen.title !== seenTitle) row.seen.title = seenTitle
  }

  /** Once a second: session durations and "last seen" of the rows in the document tick on; highlights fade. */
  private tick(): void {
    const now = Date.now() + this.skew
    const clock = performance.now()
    for (const [id, until] of this.highlights) if (until <= clock) this.highlights.delete(id)
    if (!this.list || this.mode !== 'list') return
    for (const row of this.list.rows.values()) {
      if (!row.entry) continue
      this.paintTimes(row, row.entry.p, now)
      if (row.highlighted !== null && !this.highlights.has(row.highlighted)) {
        row.highlighted = null
        row.li.classList.remove('new')
      }
    }
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

/** Writes text only when it changed. */
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text
}
