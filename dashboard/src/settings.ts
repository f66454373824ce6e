/**
 * The settings panel: the five live settings (GET and PUT /admin/api/settings), for admin
 * tokens. The server checks every value; its 400 message is shown as it is, next to the form.
 * The element at its top with id and part `license` is where the licence section mounts.
 */
import type { I18n, StringKey } from './i18n'
import type { SettingName, SettingsResponse } from './types'

export interface SettingsApi {
  /** Resolves with the status and the parsed JSON body (null when there is none). */
  request(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: unknown }>
}

const FIELDS: { name: SettingName; label: StringKey; min: number; max: number }[] = [
  { name: 'heartbeatIntervalS', label: 'setHeartbeatIntervalS', min: 1, max: 3600 },
  { name: 'presenceTimeoutS', label: 'setPresenceTimeoutS', min: 2, max: 86400 },
  { name: 'idleTimeoutS', label: 'setIdleTimeoutS', min: 2, max: 604800 },
  { name: 'diffIntervalMs', label: 'setDiffIntervalMs', min: 0, max: 60000 },
  { name: 'retentionDays', label: 'setRetentionDays', min: 1, max: 36500 },
]

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

const errorMessage = (body: unknown): string | null => {
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message
  return typeof message === 'string' ? message : null
}

export class SettingsPanel {
  readonly element: HTMLElement
  /** Where the licence section mounts (id and part `license`). */
  readonly license: HTMLElement
  private readonly form: HTMLFormElement
  private readonly inputs = new Map<SettingName, { input: HTMLInputElement; source: HTMLElement }>()
  private readonly status: HTMLElement
  private readonly error: HTMLElement
  private readonly saveButton: HTMLButtonElement
  private loaded: SettingsResponse | null = null
  private request = 0

  constructor(private readonly i18n: I18n, private readonly api: SettingsApi) {
    const t = i18n.t.bind(i18n)
    const section = el('section', 'settings')
    section.id = 'settings'
    section.setAttribute('part', 'settings')
    section.setAttribute('aria-labelledby', 'cat-settings-title')
    section.hidden = true
    this.license = el('div', 'license')
    this.license.id = 'license'
    this.license.setAttribute('part', 'license')
    const heading = el('h3', undefined, t('settingsHeading'))
    heading.id = 'cat-settings-title'
    const intro = el('p', 'intro', t('settingsIntro'))
    this.form = el('form')
    this.form.noValidate = true
    const grid = el('div', 'fields')
    for (const { name, label, min, max } of FIELDS) {
      const wrap = el('label', 'field')
      const input = el('input')
      input.type = 'number'
      input.name = name
      input.min = String(min)
      input.max = String(max)
      input.step = '1'
      input.inputMode = 'numeric'
      input.required = true
      const source = el('span', 'src')
      wrap.append(el('span', 'fl', t(label)), input, source)
      grid.append(wrap)
      this.inputs.set(name, { input, source })
    }
    this.saveButton = el('button', 'save', t('save'))
    this.saveButton.type = 'submit'
    this.status = el('p', 'ok')
    this.status.setAttribute('role', 'status')
    this.error = el('p', 'err')
    this.error.setAttribute('role', 'alert')
    this.error.setAttribute('part', 'settings-error')
    const actions = el('div', 'actions')
    actions.append(this.saveButton, this.status)
    this.form.append(grid, actions, this.error)
    this.form.addEventListener('submit', (event) => {
      event.preventDefault()
      void this.save()
    })
    section.append(this.license, heading, intro, this.form)
    this.element = section
  }

  get open(): boolean {
    return !this.element.hidden
  }

  show(): void {
    if (!this.element.hidden) return
    this.element.hidden = false
    void this.load()
  }

  hide(): void {
    this.element.hidden = true
    this.request++
  }

  private setMessages(status: string, error: string): void {
    this.status.textContent = status
    this.error.textContent = error
  }

  private setEnabled(enabled: boolean): void {
    for (const { input } of this.inputs.values()) input.disabled = !enabled
    this.saveButton.disabled = !enabled
  }

  private fill(settings: SettingsResponse): void {
    this.loaded = settings
    for (const [name, { input, source }] of this.inputs) {
      input.value = String(settings[name])
      source.textContent = this.i18n.t(settings.sources[name] === 'saved' ? 'sourceSaved' : 'sourceEnvironment')
    }
  }

  /** Reads the settings; a 403 (a staff token) leaves the panel read-only with the reason. */
  async load(): Promise<void> {
    const request = ++this.request
    this.setEnabled(false)
    this.setMessages(this.i18n.t('settingsLoading'), '')
    try {
      const { status, body } = await this.api.request('GET', '/admin/api/settings')
      if (request !== this.request) return
      if (status === 403) {
        this.setMessages('', this.i18n.t('settingsForbidden'))
        return
      }
      if (status !== 200) throw new Error(`HTTP ${status}`)
      this.fill(body as SettingsResponse)
      this.setMessages('', '')
      this.setEnabled(true)
    } catch {
      if (request === this.request) this.setMessages('', this.i18n.t('settingsError'))
    }
  }

  /** Sends the values that differ from those loaded; the server's message is shown as it is. */
  private async save(): Promise<void> {
    const changes: Record<string, unknown> = {}
    for (const [name, { input }] of this.inputs) {
      const text = input.value.trim()
      const value = text !== '' && Number.isFinite(Number(text)) ? Number(text) : text
      if (this.loaded === null || value !== this.loaded[name]) changes[name] = value
    }
    const request = ++this.request
    this.setEnabled(false)
    this.setMessages(this.i18n.t('saving'), '')
    try {
      const { status, body } = await this.api.request('PUT', '/admin/api/settings', changes)
      if (request !== this.request) return
      if (status === 200) {
        this.fill(body as SettingsResponse)
        this.setMessages(this.i18n.t('saved'), '')
      } else this.setMessages('', errorMessage(body) ?? this.i18n.t('settingsSaveError'))
    } catch {
      if (request === this.request) this.setMessages('', this.i18n.t('settingsSaveError'))
    }
    if (request === this.request) this.setEnabled(true)
  }
}
