/**
 * The licence panel: the install's licence state in words (days left in grace), its domain and
 * term, and, for admins, the key entry with Activate (GET and POST /admin/api/license). Shown
 * by the header's "Licence" button, and by itself when the server refuses the live list with
 * 402 license_required.
 */
import type { I18n, StringKey } from './i18n'
import type { LicenseState, LicenseView } from '../../src/license/license-view.js'

/** GET /admin/api/license, as the server describes it. */
export type { LicenseState, LicenseView } from '../../src/license/license-view.js'

export interface LicenseApi {
  /** A REST call with the admin token: the status and the JSON body (null when none). */
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }>
  /** The role of the current token: staff may read the state but not activate. */
  role(): Promise<'admin' | 'staff' | null>
  /** After a successful activation: the dashboard connects again at once. */
  onActivated(view: LicenseView): void
  /** Whenever the state is (re)loaded. */
  onState(view: LicenseView): void
}

const STATE_KEYS: Record<LicenseState, StringKey> = {
  unlicensed: 'licenseStateUnlicensed',
  active: 'licenseStateActive',
  grace: 'licenseStateGrace',
  expired: 'licenseStateExpired',
  invalid: 'licenseStateInvalid',
  domain_mismatch: 'licenseStateDomainMismatch',
}

const HELP_KEYS: Partial<Record<LicenseState, StringKey>> = {
  unlicensed: 'licenseHelpUnlicensed',
  grace: 'licenseHelpGrace',
  expired: 'licenseHelpExpired',
  invalid: 'licenseHelpInvalid',
  domain_mismatch: 'licenseHelpDomainMismatch',
}

const KEY_PATTERN = /^[A-Za-z0-9_-]{8,128}$/

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

export class LicensePanel {
  readonly element: HTMLElement
  private readonly stateLine: HTMLElement
  private readonly help: HTMLElement
  private readonly facts: HTMLDListElement
  private readonly detail: HTMLElement
  private readonly form: HTMLFormElement
  private readonly input: HTMLInputElement
  private readonly button: HTMLButtonElement
  private readonly adminOnly: HTMLElement
  private readonly result: HTMLElement
  private view: LicenseView | null = null
  private loading = 0

  constructor(private readonly i18n: I18n, private readonly api: LicenseApi) {
    const t = i18n.t.bind(i18n)
    const section = el('section', 'lic')
    section.hidden = true
    section.setAttribute('aria-labelledby', 'cat-license-title')
    const title = el('h3', undefined, t('licenseTitle'))
    title.id = 'cat-license-title'
    this.stateLine = el('p', 'ls')
    this.stateLine.setAttribute('role', 'status')
    this.help = el('p', 'lh')
    this.facts = el('dl', 'lf')
    this.detail = el('p', 'ld')
    this.form = el('form', 'lk')
    const label = el('label')
    label.append(el('span', undefined, t('licenseKeyLabel')))
    this.input = el('input')
    this.input.name = 'key'
    this.input.autocomplete = 'off'
    this.input.spellcheck = false
    this.input.placeholder = 'CAT-XXXXX-XXXXX-XXXXX-XXXXX'
    label.append(this.input)
    this.button = el('button', 'primary', t('licenseActivate'))
    this.button.type = 'submit'
    this.form.append(label, this.button)
    this.form.addEventListener('submit', (event) => {
      event.preventDefault()
      void this.activate()
    })
    this.adminOnly = el('p', 'lh', t('licenseAdminOnly'))
    this.adminOnly.hidden = true
    this.result = el('p', 'lr')
    this.result.setAttribute('role', 'alert')
    section.append(title, this.stateLine, this.help, this.facts, this.detail, this.form, this.adminOnly, this.result)
    this.element = section
  }

  get open(): boolean {
    return !this.element.hidden
  }

  show(open: boolean): void {
    this.element.hidden = !open
    if (open) void this.refresh()
  }

  /** Loads the state from the server and shows it; null when it could not be loaded. */
  async refresh(): Promise<LicenseView | null> {
    const call = ++this.loading
    try {
      const res = await this.api.request('GET', '/admin/api/license')
      if (call !== this.loading) return this.view
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
      this.render(res.body as LicenseView)
      const role = await this.api.role()
      this.form.hidden = role === 'staff' || this.view?.enabled === false
      this.adminOnly.hidden = role !== 'staff' || this.view?.enabled === false
      return this.view
    } catch {
      if (call === this.loading) this.stateLine.textContent = this.i18n.t('licenseLoadError')
      return null
    }
  }

  private render(view: LicenseView): void {
    const { i18n } = this
    const t = i18n.t.bind(i18n)
    this.view = view
    this.element.dataset.state = view.enabled ? view.state : 'off'
    this.api.onState(view)
    if (!view.enabled) {
      this.stateLine.textContent = t('licenseOff')
      this.help.textContent = ''
      this.facts.replaceChildren()
      this.detail.textContent = ''
      return
    }
    this.stateLine.replaceChildren(el('strong', undefined, t(STATE_KEYS[view.state])))
    if (view.state === 'grace' && view.daysLeft !== null) this.stateLine.append(' · ', t('licenseGraceDays', { n: i18n.count(view.daysLeft) }))
    const help = HELP_KEYS[view.state]
    this.help.textContent = help === undefined ? '' : t(help, { domain: view.domain ?? '' })
    const facts: [StringKey, string][] = [['licenseDomain', view.domain ?? '–']]
    if (view.validUntil !== null) facts.push(['licenseValidUntil', i18n.dateTime(view.validUntil)])
    if (view.state === 'grace' && view.graceUntil !== null) facts.push(['licenseGraceUntil', i18n.dateTime(view.graceUntil)])
    if (view.checkedAt !== null) facts.push(['licenseCheckedAt', i18n.dateTime(view.checkedAt)])
    if (view.keyHint !== null) facts.push(['licenseKeyHint', `…${view.keyHint}`])
    this.facts.replaceChildren(...facts.flatMap(([key, value]) => [el('dt', undefined, t(key)), el('dd', undefined, value)]))
    // The server's own sentence (English), with the dates and the reason: for whoever fixes it.
    this.detail.textContent = view.message
  }

  private async activate(): Promise<void> {
    const { i18n } = this
    const key = this.input.value.trim()
    if (!KEY_PATTERN.test(key)) {
      this.result.textContent = i18n.t('licenseBadKey')
      this.input.focus()
      return
    }
    this.button.disabled = true
    this.result.textContent = i18n.t('licenseActivating')
    try {
      const res = await this.api.request('POST', '/admin/api/license', { key })
      const body = res.body as (LicenseView & { error?: { message?: string } }) | null
      if (res.status === 200 && body !== null) {
        this.loading++
        this.render(body)
        const good = body.state === 'active' || body.state === 'grace'
        this.result.textContent = good ? i18n.t('licenseActivated') : ''
        if (good) {
          this.input.value = ''
          this.api.onActivated(body)
        }
      } else if (res.status === 403) this.result.textContent = i18n.t('licenseAdminOnly')
      else if (res.status === 503) this.result.textContent = i18n.t('licenseUnreachable')
      else if (res.status === 400) this.result.textContent = i18n.t('licenseBadKey')
      else this.result.textContent = `${i18n.t('licenseFailed')} ${body?.error?.message ?? ''}`.trim()
    } catch {
      this.result.textContent = i18n.t('licenseFailed')
    } finally {
      this.button.disabled = false
    }
  }
}
