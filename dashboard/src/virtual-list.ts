/**
 * A list that puts in the document only the rows in view (and a few around them), however
 * many items it lists: a scrolling box holding a `<ul>` as tall as every row together, whose
 * `<li>` are placed absolutely at their index. Rows are keyed by contact, so a row that stays
 * in view keeps its element (and its focus), and elements of rows scrolled away are reused.
 *
 * Keyboard: the rows' buttons form one tab stop (roving tabindex); the arrow keys, Page Up/Down,
 * Home and End move between rows, scrolling as needed; Enter or Space presses the row's button.
 * Each `<li>` carries `aria-posinset`/`aria-setsize`, so a screen reader announces "row 12 of
 * 100 000" though only a few dozen are in the document.
 */
import { position, type Entry } from './state'

export interface ListRow {
  li: HTMLLIElement
  button: HTMLButtonElement
  /** The contact this element shows now; null while unused. */
  id: string | null
  entry: Entry | null
}

export interface VirtualListOptions<R extends ListRow> {
  label: string
  /** Describes the keys, for screen readers. */
  hint: string
  create(): R
  /** Writes `entry` into `row` (its texts; the row's id and entry are already set). */
  fill(row: R, entry: Entry): void
  /** The current entry of a contact (to keep its row in the document while it has focus). */
  lookup(id: string): Entry | undefined
  /** Contacts whose rows stay in the document even out of view (the drawer's opener). */
  keep(): string | null
}

/** Rows rendered beyond each edge of the view. */
const OVERSCAN = 8
/** A row's height when the stylesheet's `--rh` cannot be read. */
const DEFAULT_ROW_PX = 53

export class VirtualList<R extends ListRow> {
  readonly element: HTMLDivElement
  readonly list: HTMLUListElement
  private items: readonly Entry[] = []
  private total = 0
  private rendered = new Map<string, R>()
  private readonly spare: R[] = []
  /** The contact whose button is the list's tab stop. */
  private activeId: string | null = null
  private frame = 0

  constructor(private readonly options: VirtualListOptions<R>) {
    const box = document.createElement('div')
    box.className = 'vp'
    const list = document.createElement('ul')
    list.setAttribute('aria-label', options.label)
    const hint = document.createElement('span')
    hint.className = 'sr'
    hint.id = 'cat-list-hint'
    hint.textContent = options.hint
    list.setAttribute('aria-describedby', hint.id)
    box.append(hint, list)
    box.addEventListener('scroll', () => this.schedule(), { passive: true })
    list.addEventListener('keydown', (event) => this.onKey(event))
    list.addEventListener('focusin', (event) => {
      const id = ((event.target as HTMLElement).closest('li') as HTMLElement | null)?.dataset.id
      if (id !== undefined) this.setActive(id)
    })
    if (typeof ResizeObserver === 'function') new ResizeObserver(() => this.schedule()).observe(box)
    this.element = box
    this.list = list
  }

  /** The rows rendered now, keyed by contact id, in display order. */
  get rows(): ReadonlyMap<string, R> {
    return this.rendered
  }

  /** Back to the first row (a new search). */
  scrollToTop(): void {
    this.element.scrollTop = 0
  }

  private schedule(): void {
    if (this.frame !== 0) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.render(this.items, this.total)
    })
  }

  private rowHeight(): number {
    const value = parseFloat(getComputedStyle(this.list).getPropertyValue('--rh'))
    return value > 0 ? value : DEFAULT_ROW_PX
  }

  /**
   * Shows `items` (in display order): the rows in view are (re)filled, the others leave the
   * document. `total`: how many the list holds when `items` are only its first (a snapshot's first
   * rows, shown before the rest is sorted).
   */
  render(items: readonly Entry[], total = items.length): void {
    this.items = items
    this.total = total
    const rowPx = this.rowHeight()
    this.list.style.height = `${total * rowPx}px`
    const top = this.element.scrollTop
    const height = this.element.clientHeight || 520
    const first = Math.max(0, Math.floor(top / rowPx) - OVERSCAN)
    const last = Math.min(items.length, Math.ceil((top + height) / rowPx) + OVERSCAN)
    const wanted: number[] = []
    for (let i = first; i < last; i++) wanted.push(i)
    // The focused row and the drawer's opener stay, wherever they are in the list.
    const root = this.list.getRootNode() as Document | ShadowRoot
    const focusedLi = (root.activeElement as HTMLElement | null)?.closest?.('li') as HTMLLIElement | null | undefined
    const focusedId = focusedLi && this.list.contains(focusedLi) ? focusedLi.dataset.id : undefined
    for (const id of [focusedId, this.options.keep()]) {
      if (id === undefined || id === null) continue
      const entry = this.options.lookup(id)
      if (!entry) continue
      const at = position(items, entry)
      if (items[at] === entry && (at < first || at >= last)) wanted.push(at)
    }
    wanted.sort((a, b) => a - b)

    const next = new Map<string, R>()
    for (const i of wanted) {
      const entry = items[i] as Entry
      const id = entry.p.contactId
      if (next.has(id)) continue
      let row = this.rendered.get(id)
      if (row) this.rendered.delete(id)
      else {
        row = this.spare.pop() ?? this.options.create()
        row.li.dataset.id = id
      }
      row.id = id
      row.entry = entry
      this.options.fill(row, entry)
      row.li.style.top = `${i * rowPx}px`
      row.li.setAttribute('aria-posinset', String(i + 1))
      row.li.setAttribute('aria-setsize', String(total))
      next.set(id, row)
    }
    for (const row of this.rendered.values()) {
      row.li.remove()
      row.id = null
      row.entry = null
      this.spare.push(row)
    }
    // The document order follows the list's, for reading order; only misplaced rows move.
    let cursor = this.list.firstElementChild
    let refocus: HTMLElement | null = null
    for (const row of next.values()) {
      if (row.li === cursor) {
        cursor = cursor.nextElementSibling
        continue
      }
      if (row.li.isConnected && row.li.contains(root.activeElement)) refocus = root.activeElement as HTMLElement
      this.list.insertBefore(row.li, cursor)
    }
    this.rendered = next
    if (refocus) refocus.focus({ preventScroll: true })
    // One tab stop: the active row, or else the first one in view.
    const stop = (this.activeId !== null ? next.get(this.activeId) : undefined) ?? next.get(items[Math.min(items.length - 1, Math.floor(top / rowPx))]?.p.contactId ?? '')
    for (const row of next.values()) {
      const tabIndex = row === stop ? 0 : -1
      if (row.button.tabIndex !== tabIndex) row.button.tabIndex = tabIndex
    }
  }

  private setActive(id: string): void {
    this.activeId = id
  }

  private onKey(event: KeyboardEvent): void {
    const li = (event.target as HTMLElement).closest('li') as HTMLElement | null
    const id = li?.dataset.id
    if (id === undefined) return
    const entry = this.options.lookup(id)
    if (!entry) return
    const at = position(this.items, entry)
    if (this.items[at] !== entry) return
    const page = Math.max(1, Math.floor(this.element.clientHeight / this.rowHeight()) - 1)
    const target = { ArrowDown: at + 1, ArrowUp: at - 1, PageDown: at + page, PageUp: at - page, Home: 0, End: this.items.length - 1 }[event.key]
    if (target === undefined) return
    event.preventDefault()
    this.focusIndex(Math.max(0, Math.min(this.items.length - 1, target)))
  }

  /** Scrolls row `index` into view and focuses its button. */
  focusIndex(index: number): void {
    const entry = this.items[index]
    if (!entry) return
    const rowPx = this.rowHeight()
    const box = this.element
    if (index * rowPx < box.scrollTop) box.scrollTop = index * rowPx
    else if ((index + 1) * rowPx > box.scrollTop + box.clientHeight) box.scrollTop = (index + 1) * rowPx - box.clientHeight
    this.activeId = entry.p.contactId
    this.render(this.items, this.total)
    this.rendered.get(entry.p.contactId)?.button.focus({ preventScroll: true })
  }

  /** Focuses a contact's row, when it is listed (the drawer closed on a row rendered again). */
  focusContact(id: string): boolean {
    const entry = this.options.lookup(id)
    if (!entry) return false
    const at = position(this.items, entry)
    if (this.items[at] !== entry) return false
    this.focusIndex(at)
    return true
  }
}
