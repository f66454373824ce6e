import { firstPage, nextPage, type DemoContact, type DemoPage } from './demo-population.js'
import { between, tabId, type Random } from './random.js'
import type { Scheduler } from './scheduler.js'

/** One request of a simulated browser, as the snippet sends it. */
export interface DemoRequest {
  method: 'GET' | 'POST'
  url: string
  headers?: Record<string, string>
  payload?: string
}

export interface DemoAnswer {
  statusCode: number
  body: string
  /** The answer's Retry-After, in seconds, when it has one (a shed or rate-limited request). */
  retryAfterS?: number
}

export interface DemoTrafficOptions {
  contacts: readonly DemoContact[]
  /** Sends a request through the app's own routes; a rejection counts as a failed request. */
  send(request: DemoRequest): Promise<DemoAnswer>
  /** A fresh client token of `contact`, as the portal signs one for each page it serves. */
  mintToken(contact: DemoContact): string
  /** The version of the consent text the snippet shows in `locale`. */
  consentVersion(locale: string): string
  /** The heartbeat interval in force, read at each beat scheduled. */
  heartbeatIntervalS(): number
  now: () => number
  scheduler: Scheduler
  random: Random
  log: { info(object: object, message: string): void; warn(object: object, message: string): void; debug(object: object, message: string): void }
}

/** What the simulated contacts sent and got back since the start. */
export interface DemoTrafficStats {
  /** Requests by kind: `consent` (a decision posted), `consent-check`, and each heartbeat event. */
  sent: Record<string, number>
  /** Answers by HTTP status; 0 for a request that got none (the app refused to take it). A 404 is a consent check that found no decision. */
  answers: Record<string, number>
  /** Visits begun, second tabs opened, visits ended by going silent (the server times them out). */
  visits: number
  secondTabs: number
  silentEnds: number
  /** Errors thrown by the simulation itself: none, unless it has a bug. */
  errors: number
}

export interface DemoTraffic {
  /** Starts every contact's first visit, spread over the first heartbeat interval. */
  start(): void
  /** Cancels every timer and resolves once the requests in flight are answered; nothing is sent after. */
  stop(): Promise<void>
  /** Resolves once every contact waits on a timer (tests advance their clock then). */
  settled(): Promise<void>
  stats(): DemoTrafficStats
}

const SECOND = 1000
const MINUTE = 60 * SECOND

/**
 * The browsing, at human pace. A visit: consent (checked, granted when not yet), a `nav` on
 * its first page, a beat every interval ±10 % (as the snippet does), another page every 20-90 s,
 * now and then the tab hidden for 15 s to 4 min (no beats meanwhile, then `visible`), in a third
 * of the visits a second tab for a few minutes. It ends with a `leave` from every tab (the pages
 * closed) or, one time in three, in silence (the laptop closed: the server times it out). The
 * contact comes back 45 s to 6 min later. A first visit lasts at least four intervals, so every
 * contact is online at the end of the first one.
 */
const TIMING = {
  firstVisitMs: [4 * MINUTE, 15 * MINUTE],
  visitMs: [2 * MINUTE, 12 * MINUTE],
  minVisitIntervals: 4,
  dwellMs: [20 * SECOND, 90 * SECOND],
  hideChance: 0.15,
  hiddenMs: [15 * SECOND, 4 * MINUTE],
  secondTabChance: 0.33,
  secondTabAfterMs: [20 * SECOND, 3 * MINUTE],
  secondTabMs: [1 * MINUTE, 5 * MINUTE],
  silentEndChance: 1 / 3,
  awayMs: [45 * SECOND, 6 * MINUTE],
  /** The first visits start over this share of the first interval: joined and on dashboards within it. */
  joinSpread: 0.75,
} as const

/** Like a browser's: the consent ledger stores it. */
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 cat-demo-traffic'

type Ending = 'leave' | 'silent'

/**
 * N simulated contacts browsing the demo portal through the real portal endpoints: consent,
 * then heartbeats. Every wait is a timer of `scheduler` and every time is read from `now`, so a
 * test plays hours of browsing with its own clock. The work in progress is counted (`busy`):
 * a flow holds one unit while it runs and gives it back while it waits on a timer, so
 * `settled()` knows when all of them wait.
 */
export function createDemoTraffic(options: DemoTrafficOptions): DemoTraffic {
  const { contacts, send, mintToken, consentVersion, heartbeatIntervalS, now, scheduler, random, log } = options
  let running = false
  let busy = 0
  const sleeping = new Map<unknown, (woke: boolean) => void>()
  const flows = new Set<Promise<void>>()
  let whenSettled: (() => void)[] = []
  /** The consent version each contact has granted, as the snippet remembers it in the browser. */
  const granted = new Map<string, string>()
  const stats: DemoTrafficStats = { sent: {}, answers: {}, visits: 0, secondTabs: 0, silentEnds: 0, errors: 0 }

  const release = (): void => {
    busy -= 1
    if (busy > 0) return
    const waiting = whenSettled
    whenSettled = []
    for (const wake of waiting) wake()
  }

  /** Waits `ms` on the scheduler; false when stopped meanwhile (the flow then ends). */
  const sleep = (ms: number): Promise<boolean> => {
    if (!running) return Promise.resolve(false)
    return new Promise((resolve) => {
      const handle = scheduler.setTimeout(() => {
        sleeping.delete(handle)
        busy += 1
        resolve(running)
      }, Math.max(0, ms))
      sleeping.set(handle, resolve)
      release()
    })
  }

  /** Runs `flow` as its own unit of work; its errors are counted and logged, never thrown. */
  const spawn = (flow: () => Promise<void>): void => {
    if (!running) return
    busy += 1
    const done = flow()
      .catch((error: unknown) => {
        stats.errors += 1
        log.warn({ err: error }, 'demo traffic: a simulated visit failed')
      })
      .finally(() => {
        flows.delete(done)
        release()
      })
    flows.add(done)
  }

  const count = (record: Record<string, number>, key: string): void => {
    record[key] = (record[key] ?? 0) + 1
  }

  /** Sends one request and counts it; the status, 0 when the app took none. An answer not `expected` is logged. */
  const request = async (kind: string, req: DemoRequest, expected: readonly number[] = [204]): Promise<DemoAnswer> => {
    count(stats.sent, kind)
    let answer: DemoAnswer
    try {
      answer = await send({ ...req, headers: { 'user-agent': USER_AGENT, ...req.headers } })
    } catch (error) {
      log.debug({ err: error, kind }, 'demo traffic: a request was not taken')
      answer = { statusCode: 0, body: '' }
    }
    count(stats.answers, String(answer.statusCode))
    if (!expected.includes(answer.statusCode)) {
      // The first refusal of each status is worth a line; the rest would flood the log.
      const level = stats.answers[String(answer.statusCode)] === 1 ? 'warn' : 'debug'
      log[level]({ kind, statusCode: answer.statusCode }, 'demo traffic: a simulated request was refused')
    }
    return answer
  }

  /** One heartbeat of a tab; false when the tab must stop (401 or 403, as the snippet does). */
  const beat = async (token: string, sid: string, page: DemoPage, event: string): Promise<boolean> => {
    const query = new URLSearchParams({ token, sid, path: page.path, title: page.title, event })
    const { statusCode } = await request(event, { method: 'GET', url: `/cat_heartbeat?${query}` })
    return statusCode !== 401 && statusCode !== 403
  }

  /** No answer, too many requests, or a server error: worth asking again shortly. */
  const transient = (answer: DemoAnswer): boolean => answer.statusCode === 0 || answer.statusCode === 429 || answer.statusCode >= 500

  /**
   * The snippet's consent step: the decision in force, and `granted` when there is none yet.
   * A transient refusal (an overloaded instance sheds the simulated load too) is asked again
   * after its Retry-After, else after an interval, so a busy start leaves no contact away for
   * minutes. False when refused for good, or stopped meanwhile.
   */
  const consent = async (contact: DemoContact, token: string): Promise<boolean> => {
    for (;;) {
      const answer = await consentOnce(contact, token)
      if (answer === true) return true
      if (!transient(answer)) return false
      const waitMs = (answer.retryAfterS ?? heartbeatIntervalS()) * SECOND * between(random, 1, 1.5)
      if (!(await sleep(waitMs))) return false
    }
  }

  /** One try of the consent step: true once granted, else the answer that refused it. */
  const consentOnce = async (contact: DemoContact, token: string): Promise<true | DemoAnswer> => {
    const version = consentVersion(contact.locale)
    if (granted.get(contact.id) === version) return true
    const found = await request('consent-check', { method: 'GET', url: `/clients/cat_consent?${new URLSearchParams({ token })}` }, [200, 404])
    if (transient(found)) return found
    if (found.statusCode === 200) {
      const decision = JSON.parse(found.body) as { decision?: string; version?: string }
      if (decision.decision === 'granted' && decision.version === version) {
        granted.set(contact.id, version)
        return true
      }
    }
    const payload = JSON.stringify({ token, decision: 'granted', version, locale: contact.locale })
    const posted = await request('consent', { method: 'POST', url: '/clients/cat_consent', headers: { 'content-type': 'text/plain' }, payload })
    if (posted.statusCode !== 204) return posted
    granted.set(contact.id, version)
    return true
  }

  const beatGapMs = (): number => heartbeatIntervalS() * SECOND * between(random, 0.9, 1.1)

  /** One tab from its page load to `endsAt`; it closes with a `leave` or falls silent. */
  const tab = async (token: string, sid: string, page: DemoPage, endsAt: number, ending: Ending): Promise<void> => {
    if (!(await beat(token, sid, page, 'nav'))) return
    let beatAt = now() + beatGapMs()
    let navAt = now() + between(random, ...TIMING.dwellMs)
    for (;;) {
      if (!(await sleep(Math.min(beatAt, navAt, endsAt) - now()))) return
      const at = now()
      if (at >= endsAt) break
      if (at >= navAt) {
        if (random() < TIMING.hideChance) {
          // Another window in front: no beats until the tab is shown again.
          if (!(await beat(token, sid, page, 'hidden'))) return
          const shownAt = Math.min(now() + between(random, ...TIMING.hiddenMs), endsAt)
          if (!(await sleep(shownAt - now()))) return
          if (now() >= endsAt) break
          if (!(await beat(token, sid, page, 'visible'))) return
        } else {
          page = nextPage(random, page)
          if (!(await beat(token, sid, page, 'nav'))) return
        }
        beatAt = now() + beatGapMs()
        navAt = now() + between(random, ...TIMING.dwellMs)
      } else if (at >= beatAt) {
        if (!(await beat(token, sid, page, 'beat'))) return
        beatAt = now() + beatGapMs()
      }
    }
    if (ending === 'leave') await beat(token, sid, page, 'leave')
  }

  /** A visit: consent, a tab (two sometimes), then away for a while and back. */
  const visit = async (contact: DemoContact, first: boolean): Promise<void> => {
    stats.visits += 1
    const token = mintToken(contact)
    const comeBack = (): void => spawn(async () => {
      if (await sleep(between(random, ...TIMING.awayMs))) await visit(contact, false)
    })
    if (!(await consent(contact, token))) return comeBack()
    const lengthMs = Math.max(between(random, ...(first ? TIMING.firstVisitMs : TIMING.visitMs)), TIMING.minVisitIntervals * heartbeatIntervalS() * SECOND)
    const endsAt = now() + lengthMs
    const ending: Ending = random() < TIMING.silentEndChance ? 'silent' : 'leave'
    if (ending === 'silent') stats.silentEnds += 1
    // The tabs run as flows of their own; the last to end starts the time away.
    let open = 1
    const tabEnded = (): void => {
      open -= 1
      if (open === 0) comeBack()
    }
    const page = firstPage(random)
    const mainSid = tabId(random)
    if (random() < TIMING.secondTabChance) {
      open += 1
      const openAfter = between(random, ...TIMING.secondTabAfterMs)
      const lifeMs = between(random, ...TIMING.secondTabMs)
      const secondSid = tabId(random)
      spawn(async () => {
        if ((await sleep(openAfter)) && now() < endsAt) {
          stats.secondTabs += 1
          const closesAt = Math.min(now() + lifeMs, endsAt)
          await tab(token, secondSid, nextPage(random, page), closesAt, closesAt < endsAt ? 'leave' : ending)
        }
        tabEnded()
      })
    }
    spawn(async () => {
      await tab(token, mainSid, page, endsAt, ending)
      tabEnded()
    })
  }

  return {
    start() {
      if (running) return
      running = true
      const spreadMs = heartbeatIntervalS() * SECOND * TIMING.joinSpread
      contacts.forEach((contact, index) => {
        // Evenly spread, each at a random point of its own slot: a steady trickle, not a burst.
        const delay = (spreadMs * (index + random())) / contacts.length
        spawn(async () => {
          if (await sleep(delay)) await visit(contact, true)
        })
      })
      log.info({ contacts: contacts.length }, 'demo traffic: simulated contacts browse the demo portal')
    },
    async stop() {
      if (!running) return
      running = false
      for (const [handle, wake] of sleeping) {
        scheduler.clearTimeout(handle)
        busy += 1
        wake(false)
      }
      sleeping.clear()
      while (flows.size > 0) await Promise.all([...flows])
    },
    settled() {
      if (busy === 0) return Promise.resolve()
      return new Promise((resolve) => whenSettled.push(resolve))
    },
    stats() {
      return structuredClone(stats)
    },
  }
}
