/**
 * The online contacts counted by company or by page, live: the largest groups first, those
 * matching the search only. Choosing a group lists its contacts.
 */
import type { I18n } from './i18n'
import type { Group, GroupKind } from './state'

/** Groups shown at once: a search narrows the rest down. */
export const GROUPS_SHOWN = 100

interface GroupRow {
  li: HTMLLIElement
  button: HTMLButtonElement
  label: HTMLElement
  detail: HTMLElement
  count: HTMLElement
}

function span(className: string): HTMLElement {
  const node = document.createElement('span')
  node.className = className
  return node
}

function set(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text
}

export class GroupsView {
  readonly element: HTMLDivElement
  private readonly list: HTMLUListElement
  private readonly more: HTMLParagraphElement
  private rows = new Map<string, GroupRow>()

  constructor(private readonly i18n: I18n, private readonly onPick: (kind: GroupKind, group: Group) => void) {
    const box = document.createElement('div')
    box.className = 'groups'
    box.hidden = true
    this.list = document.createElement('ul')
    this.more = document.createElement('p')
    this.more.className = 'gmore'
    box.append(this.list, this.more)
    this.element = box
  }

  /** The groups of `kind` matching `search` (lower-cased), largest first. */
  render(kind: GroupKind, groups: ReadonlyMap<string, Group>, search: string): number {
    const { i18n } = this
    const matching: Group[] = []
    for (const group of groups.values()) {
      if (search === '' || group.label.toLowerCase().includes(search) || group.detail.toLowerCase().includes(search)) matching.push(group)
    }
    matching.sort((a, b) => b.count - a.count || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
    const shown = matching.slice(0, GROUPS_SHOWN)
    this.list.setAttribute('aria-label', i18n.t(kind === 'company' ? 'viewCompany' : 'viewPage'))
    const next = new Map<string, GroupRow>()
    let cursor = this.list.firstElementChild
    const root = this.list.getRootNode() as Document | ShadowRoot
    let refocus: HTMLElement | null = null
    for (const group of shown) {
      const id = `${kind}\n${group.key}`
      let row = this.rows.get(id)
      if (row) this.rows.delete(id)
      else {
        const li = document.createElement('li')
        const button = document.createElement('button')
        button.type = 'button'
        button.className = 'grow'
        const label = span('gl')
        const detail = span('gd')
        const count = span('gc num')
        const names = span('c')
        names.append(label, detail)
        button.append(names, count)
        li.append(button)
        row = { li, button, label, detail, count }
      }
      const picked = group
      row.button.onclick = () => this.onPick(kind, picked)
      set(row.label, group.label || i18n.t('untitled'))
      set(row.detail, group.detail)
      set(row.count, i18n.t('groupOnline', { n: i18n.count(group.count) }))
      next.set(id, row)
      if (row.li === cursor) cursor = cursor.nextElementSibling
      else {
        // Moving an element drops its focus: a count that reorders the groups keeps it.
        if (row.li.isConnected && row.li.contains(root.activeElement)) refocus = root.activeElement as HTMLElement
        this.list.insertBefore(row.li, cursor)
      }
    }
    for (const row of this.rows.values()) row.li.remove()
    this.rows = next
    if (refocus) refocus.focus({ preventScroll: true })
    const hidden = matching.length - shown.length
    this.more.textContent = hidden > 0 ? i18n.t('groupsMore', { n: i18n.count(hidden) }) : ''
    return matching.length
  }
}
