/** The activity drawer: one contact's sessions, newest first, with their pages, paged by `nextCursor`. */
import type { I18n } from './i18n'
import type { ActivityResponse, ActivitySession, Presence } from './types'

export interface DrawerApi {
  get<T>(path: string): Promise<T>
}

const PAGE_SIZE = 10

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

export class Drawer {
  readonly element: HTMLElement
  private readonly heading: HTMLHeadingElement
  private readonly sub: HTMLElement
  private readonly message: HTMLElement
  private readonly list: HTMLOListElement
  private readonly moreButton: HTMLButtonElement
  private readonly closeButton: HTMLButtonElement
  private contactId: string | null = null
  private cursor: string | null = null
  private request = 0
  private opener: HTMLElement | null = null

  constructor(private readonly i18n: I18n, private readonly api: DrawerApi) {
    const box = el('div', 'drawer')
    box.hidden = true
    box.setAttribute('role', 'dialog')
    box.setAttribute('aria-labelledby', 'cat-drawer-title')
    const head = el('div', 'dh')
    const titles = el('div')
    this.heading = el('h3')
    this.heading.id = 'cat-drawer-title'
    this.sub = el('div', 'sub')
    titles.append(this.heading, this.sub)
    this.closeButton = el('button', 'x', '×')
    this.closeButton.type = 'button'
    this.closeButton.setAttribute('aria-label', i18n.t('close'))
    this.closeButton.title = i18n.t('close')
    this.closeButton.onclick = () => this.close()
    head.append(titles, this.closeButton)
    const body = el('div', 'db')
    this.message = el('p', 'msg')
    this.message.setAttribute('role', 'status')
    this.list = el('ol', 'sessions')
    this.moreButton = el('button', 'more', i18n.t('more'))
    this.moreButton.type = 'button'
    this.moreButton.hidden = true
    this.moreButton.onclick = () => void this.load()
    body.append(this.list, this.message, this.moreButton)
    box.append(head, body)
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation()
        this.close()
      }
    })
    this.element = box
  }

  get openFor(): string | null {
    return this.contactId
  }

  open(presence: Presence, opener: HTMLElement | null): void {
    this.contactId = presence.contactId
    this.opener = opener
    this.cursor = null
    this.heading.textContent = this.i18n.t('activityOf', { name: presence.name || presence.contactId })
    this.sub.textContent = [presence.company, presence.contactId].filter(Boolean).join(' · ')
    this.list.replaceChildren()
    this.element.hidden = false
    this.closeButton.focus()
    void this.load()
  }

  close(): void {
    if (this.element.hidden) return
    this.element.hidden = true
    this.contactId = null
    this.request++
    if (this.opener?.isConnected) this.opener.focus()
    this.opener = null
  }

  private async load(): Promise<void> {
    const contactId = this.contactId
    if (contactId === null) return
    const request = ++this.request
    this.moreButton.hidden = true
    this.message.textContent = this.i18n.t('loadingActivity')
    const query = `limit=${PAGE_SIZE}${this.cursor ? `&cursor=${encodeURIComponent(this.cursor)}` : ''}`
    try {
      const page = await this.api.get<ActivityResponse>(`/admin/api/contacts/${encodeURIComponent(contactId)}/activity?${query}`)
      if (request !== this.request) return
      for (const session of page.sessions) this.list.append(this.session(session))
      this.cursor = page.nextCursor
      this.moreButton.hidden = page.nextCursor === null
      this.message.textContent = this.list.childElementCount === 0 ? this.i18n.t('noActivity') : ''
    } catch {
      if (request !== this.request) return
      this.message.textContent = this.i18n.t('activityError')
      this.moreButton.hidden = this.cursor === null
    }
  }

  private session(session: ActivitySession): HTMLLIElement {
    const { i18n } = this
    const li = el('li', 'session')
    const head = el('div', 'sh')
    const when = el('strong', undefined, `${i18n.dateTime(session.startedAt)} – ${session.endedAt === null ? i18n.t('ongoing') : i18n.time(session.endedAt)}`)
    const visible = el('span', 'num', i18n.t('visible', { d: i18n.duration(session.durationS * 1000) }))
    head.append(when, visible)
    const reason = session.endReason
    const reasonKey = reason === 'timeout' ? 'endTimeout' : reason === 'leave' ? 'endLeave' : reason === 'idle' ? 'endIdle' : reason === 'withdrawn' ? 'endWithdrawn' : null
    if (reasonKey !== null) head.append(el('span', undefined, i18n.t(reasonKey)))
    const pages = el('ol', 'pages')
    for (const page of session.pages) {
      const item = el('li')
      item.append(
        el('span', 'pt', page.title || i18n.t('untitled')),
        el('span', 'path', page.path),
        el('span', 'pm num', `${i18n.time(page.startedAt)} · ${i18n.duration(page.durationS * 1000)}`),
      )
      pages.append(item)
    }
    li.append(head, pages)
    return li
  }
}
