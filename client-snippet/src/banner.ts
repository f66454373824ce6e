/**
 * The consent banner: a non-modal dialog fixed at the bottom of the viewport, in a shadow root
 * so the portal's CSS cannot reach it nor it the portal's. Accept and Decline look the same
 * and have the same size; "More details" shows the longer text in place.
 */

import type { CatStrings } from './strings'

const CSS =
  ':host{all:initial!important}' +
  'div{position:fixed;z-index:2147483647;inset:auto 0 0;max-height:40vh;overflow:auto;display:flex;flex-wrap:wrap;gap:8px;' +
  'padding:16px;background:#fff;color:#222;font:15px/1.4 system-ui,sans-serif;border-top:2px solid #146}' +
  'h2,p{width:100%;margin:0;font-size:1em}' +
  'button{flex:1 1 0;max-width:14em;font:inherit;padding:8px;border:2px solid #146;border-radius:4px;background:#146;color:#fff;cursor:pointer}' +
  '#more{flex:none;background:0;color:#146;border-color:#0000;text-decoration:underline}' +
  ':focus-visible{outline:3px solid #d50}'

let host: HTMLElement | undefined
let back: HTMLElement | null

export function showBanner(L: CatStrings, decide: (granted: boolean) => void): void {
  if (host) return
  // The persistent control's shadow root delegates focus, so focusing its host focuses its button.
  back = document.activeElement as HTMLElement | null
  const shell = (host = document.createElement('cat-consent'))
  const root = shell.attachShadow({ mode: 'open' })
  root.innerHTML =
    '<style>' + CSS + '</style>' +
    '<div role=dialog aria-labelledby=title aria-describedby=text>' +
    '<h2 id=title></h2><p id=text></p><p id=details hidden></p>' +
    '<button id=accept></button><button id=decline></button>' +
    '<button id=more aria-expanded=false aria-controls=details></button></div>'
  const $ = (id: string): HTMLElement => root.getElementById(id)!
  for (const key of ['title', 'text', 'details', 'accept', 'decline', 'more'] as const) $(key).textContent = L[key]
  const dialog = root.lastChild as HTMLElement
  const details = $('details')
  const more = $('more')
  const first = $('accept')
  first.onclick = () => decide(true)
  $('decline').onclick = () => decide(false)
  more.onclick = () => {
    const open = details.hidden
    details.hidden = !open
    more.setAttribute('aria-expanded', '' + open)
    more.textContent = open ? L.less : L.more
  }
  dialog.onkeydown = (event) => {
    // Escape is no decision: focus goes back to the page, the banner stays.
    if (event.key == 'Escape') {
      ;(event.target as HTMLElement).blur()
      if (back) back.focus()
    }
    // Tab cycles within the banner while focus is in it.
    if (event.key == 'Tab' && root.activeElement == (event.shiftKey ? first : more)) {
      event.preventDefault()
      ;(event.shiftKey ? more : first).focus()
    }
  }
  // Non-modal: a page element that gets focus under the banner is scrolled above it.
  document.addEventListener('focusin', (event) => {
    const below = (event.target as Element).getBoundingClientRect().bottom - dialog.getBoundingClientRect().top
    if (host == shell && event.target != shell && below > 0) scrollBy(0, below + 8)
  })
  document.body.appendChild(shell)
  first.focus()
}

export function hideBanner(): void {
  if (host) {
    const hadFocus = document.activeElement == host
    host.remove()
    host = undefined
    if (hadFocus && back) back.focus()
  }
}
