import type { ActivityEvent } from '../presence/presence-engine.js'

/** A session as stored: from a contact's join to its end. Times in ms. */
export interface SessionRow {
  /** The id of the join event that started it. */
  id: string
  contactId: string
  clientId: string
  name: string
  company: string
  startedAt: number
  endedAt: number | null
  /** Visible time credited so far. */
  visibleMs: number
  /** While some tab is visible: when the running visible period began. */
  visibleSince: number | null
  endReason: string | null
  pagesCount: number
  lastEventAt: number
}

/** One page shown in one tab: from its nav to the next nav of the tab, or the tab's end. */
export interface PageVisitRow {
  /** The id of the join or nav event that opened it. */
  id: string
  sessionId: string
  contactId: string
  sid: string
  path: string
  title: string
  startedAt: number
  endedAt: number | null
  visibleMs: number
  visibleSince: number | null
}

interface Tab {
  visible: boolean
  page: PageVisitRow | undefined
}

function credit(row: { visibleMs: number; visibleSince: number | null }, until: number): void {
  if (row.visibleSince === null) return
  row.visibleMs += Math.max(0, until - row.visibleSince)
  row.visibleSince = Math.max(row.visibleSince, until)
}

/**
 * Turns one contact's events, in id order, into sessions and page visits. Pure: the writer
 * runs it again over the stored events of the open session whenever new ones arrive, so the
 * result never depends on the order in which writers happened to commit.
 *
 * Visible time: a session is credited while at least one of its tabs is visible, a page
 * while its own tab is; `hidden` stops the credit, `visible` restarts it, a `gap` (a late beat:
 * a sleeping laptop) credits nothing between the last beat before it and the beat after it,
 * and an expiry ends the session at the last time the contact was seen. Events before the
 * first `join` (their join is not written yet) are left for a later pass.
 */
export function foldEvents(events: readonly ActivityEvent[]): { sessions: SessionRow[]; pages: PageVisitRow[] } {
  const sessions: SessionRow[] = []
  const pages: PageVisitRow[] = []
  let session: SessionRow | undefined
  const tabs = new Map<string, Tab>()

  const anyVisible = (): boolean => {
    for (const tab of tabs.values()) if (tab.visible) return true
    return false
  }
  const openPage = (event: ActivityEvent, sessionId: string): PageVisitRow => {
    const page: PageVisitRow = {
      id: event.id,
      sessionId,
      contactId: event.contactId,
      sid: event.sid,
      path: event.path,
      title: event.title,
      startedAt: event.at,
      endedAt: null,
      visibleMs: 0,
      visibleSince: event.at,
    }
    pages.push(page)
    return page
  }
  const closePage = (page: PageVisitRow | undefined, at: number): void => {
    if (page === undefined || page.endedAt !== null) return
    credit(page, at)
    page.visibleSince = null
    page.endedAt = at
  }
  const closeSession = (open: SessionRow, at: number, reason: string): void => {
    for (const tab of tabs.values()) closePage(tab.page, at)
    tabs.clear()
    credit(open, at)
    open.visibleSince = null
    open.endedAt = at
    open.endReason = reason
    session = undefined
  }

  for (const event of events) {
    const { at } = event
    if (event.type === 'join') {
      // A join while a session is open means its end was lost: it ended when last heard of.
      if (session !== undefined) closeSession(session, session.lastEventAt, 'timeout')
      session = {
        id: event.id,
        contactId: event.contactId,
        clientId: event.clientId,
        name: event.name ?? '',
        company: event.company ?? '',
        startedAt: at,
        endedAt: null,
        visibleMs: 0,
        visibleSince: at,
        endReason: null,
        pagesCount: 1,
        lastEventAt: at,
      }
      sessions.push(session)
      tabs.set(event.sid, { visible: true, page: openPage(event, session.id) })
      continue
    }
    if (session === undefined) continue
    session.lastEventAt = Math.max(session.lastEventAt, at)
    const tab = tabs.get(event.sid)

    switch (event.type) {
      case 'nav': {
        closePage(tab?.page, at)
        if (!anyVisible()) session.visibleSince = at
        tabs.set(event.sid, { visible: true, page: openPage(event, session.id) })
        session.pagesCount += 1
        break
      }
      case 'visible': {
        if (tab?.visible === true) break
        if (!anyVisible()) session.visibleSince = at
        if (tab === undefined) tabs.set(event.sid, { visible: true, page: undefined })
        else {
          tab.visible = true
          if (tab.page !== undefined) tab.page.visibleSince = at
        }
        break
      }
      case 'hidden': {
        if (tab === undefined || !tab.visible) break
        tab.visible = false
        if (tab.page !== undefined) {
          credit(tab.page, at)
          tab.page.visibleSince = null
        }
        if (!anyVisible()) {
          credit(session, at)
          session.visibleSince = null
        }
        break
      }
      case 'leave': {
        if (tab === undefined) break
        closePage(tab.page, at)
        tabs.delete(event.sid)
        if (tab.visible && !anyVisible()) {
          credit(session, at)
          session.visibleSince = null
        }
        break
      }
      case 'gap': {
        const from = event.from ?? at
        for (const row of [session, tab?.page]) {
          if (row === undefined || row.visibleSince === null) continue
          credit(row, from)
          row.visibleSince = Math.max(row.visibleSince, at)
        }
        break
      }
      case 'end': {
        closeSession(session, at, event.reason ?? 'leave')
        break
      }
    }
  }
  return { sessions, pages }
}
