import type { FastifyBaseLogger } from 'fastify'
import { Agent } from 'undici'
import type { LicenseConfig } from '../config/config.js'
import type { ActivityStore } from '../activity/activity-store.js'
import { AppError } from '../errors/errors.js'
import { requestLease, type ActivationAnswer } from './license-client.js'
import { evaluateLicense, isLicensed, parseLicenseRecord, REVALIDATE_MS, type LicenseRecord, type LicenseView } from './license-state.js'

/** The cat_install_state document of the licence. */
export const LICENSE_STATE_NAME = 'license'
/** A validation is spread over the hour before it is due, so instances and installs do not call at once. */
const JITTER_MS = 3_600_000
/** An instance about to validate moves the due time this far ahead, so the others do not call too. */
const CLAIM_MS = 120_000
const RETRY_BASE_MS = 60_000
const RETRY_MAX_MS = 3_600_000

export interface LicenseManagerOptions {
  license: LicenseConfig | undefined
  store: Pick<ActivityStore, 'readInstallState' | 'writeInstallState'>
  now: () => number
  /** Sent to the licence server, which counts an install's instances. */
  instanceId: string
  log: FastifyBaseLogger
  /** ms before a call to the licence server is given up. */
  timeoutMs?: number
  random?: () => number
}

export interface LicenseManager {
  /** The state as of the last tick, activation or validation: a field, no I/O. */
  readonly view: LicenseView
  /** Whether the staff side is served (licensing off, `active` or `grace`): a field, no I/O. */
  readonly licensed: boolean
  /** Reads the stored licence and evaluates it, without network (the start). */
  load(): Promise<void>
  /** Re-reads the stored licence (another instance may have changed it), re-evaluates, and validates when due. */
  tick(): Promise<void>
  /**
   * Activates `key` with the licence server now and stores the lease; 503 unavailable when the
   * server cannot be reached, 400 when the answer is not a working licence while another key's is
   * in force (that one stays).
   */
  activate(key: string): Promise<LicenseView>
  /** Validates the stored key now, whatever the schedule. */
  validate(): Promise<void>
  /** Resolves once the background work started so far is done (tests). */
  settled(): Promise<void>
  /** Calls `listener` whenever `licensed` changes; returns the function that stops it. */
  onChange(listener: (licensed: boolean) => void): () => void
  /** Waits for the work in flight and closes the connections to the licence server. */
  close(): Promise<void>
}

/** Backoff of the failed attempt number `failures` (1, 2, …): 1 min doubling to 1 h, jittered in its upper half. */
function retryDelayMs(failures: number, random: () => number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(base / 2 + (random() * base) / 2)
}

/**
 * A database error in a line that names no value: drizzle's own message quotes the query's
 * parameters (the stored record holds the key), so the driver's error underneath is named.
 */
function databaseReason(error: unknown): string {
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error
  if (!(inner instanceof Error)) return 'unknown error'
  const code = (inner as { code?: unknown }).code
  const first = inner.message.split('\n')[0] ?? ''
  return typeof code === 'string' && !first.includes(code) ? `${code}: ${first}` : first
}

/**
 * The licence of this install, shared by every instance through cat_install_state: whoever
 * activates or validates writes the lease there, and every instance re-reads it on each tick,
 * so a restart needs no network and an activation on one instance reaches the others.
 */
export function createLicenseManager(options: LicenseManagerOptions): LicenseManager {
  const { license, store, now, instanceId, log } = options
  const timeoutMs = options.timeoutMs ?? 10_000
  const random = options.random ?? Math.random
  let record: LicenseRecord | undefined
  let storedText: string | undefined
  /** Why activating CAT_LICENSE_KEY failed, while nothing is stored. */
  let pending: string | undefined
  let pendingFailures = 0
  let pendingRetryAt = 0
  let view = evaluateLicense(license, undefined, now())
  let licensed = isLicensed(view)
  let chain: Promise<unknown> = Promise.resolve()
  const listeners = new Set<(licensed: boolean) => void>()
  // A pool of its own, made at the first call, so closing the app leaves no keep-alive socket
  // to the licence server.
  let agent: Agent | undefined

  const refresh = (): void => {
    const previous = view
    view = evaluateLicense(license, record, now(), pending)
    licensed = isLicensed(view)
    if (isLicensed(previous) !== licensed) for (const listener of listeners) listener(licensed)
    if (previous.state !== view.state) {
      const line = { state: view.state, previous: previous.state, message: view.message }
      if (licensed) log.info(line, `licence: ${view.state}`)
      else log.warn(line, `licence: ${view.state}; the staff side answers 402 license_required`)
    }
  }

  /** One piece of licence work at a time in this instance: ticks, activations and validations queue. */
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = chain.then(work, work)
    chain = run.catch(() => undefined)
    return run
  }

  const reload = async (): Promise<void> => {
    const row = await store.readInstallState(LICENSE_STATE_NAME)
    if (row?.value === storedText) return
    storedText = row?.value
    record = row === undefined ? undefined : parseLicenseRecord(row.value)
  }

  const save = async (next: LicenseRecord): Promise<void> => {
    const text = JSON.stringify(next)
    await store.writeInstallState(LICENSE_STATE_NAME, text, now())
    record = next
    storedText = text
  }

  const leaseRecord = (key: string, answer: Extract<ActivationAnswer, { kind: 'lease' }>): LicenseRecord => {
    const at = now()
    return { v: 1, key, lease: answer.signed.lease, signature: answer.signed.signature, checkedAt: at, failedAt: null, failure: null, failures: 0, nextCheckAt: at + REVALIDATE_MS - Math.round(random() * JITTER_MS) }
  }

  const failedRecord = (current: LicenseRecord, reason: string): LicenseRecord => {
    const failures = current.failures + 1
    const at = now()
    return { ...current, failedAt: at, failure: reason, failures, nextCheckAt: at + retryDelayMs(failures, random) }
  }

  const ask = (key: string): Promise<ActivationAnswer> => {
    if (license === undefined) throw new Error('licensing is off')
    return requestLease({ serverUrl: license.serverUrl, key, domain: license.domain, instanceId, timeoutMs, dispatcher: (agent ??= new Agent({ connect: { timeout: timeoutMs } })) })
  }

  const validateNow = async (): Promise<void> => {
    if (license === undefined) return
    await reload()
    const current = record
    if (current === undefined) return
    await save({ ...current, nextCheckAt: now() + CLAIM_MS })
    const answer = await ask(current.key)
    // An admin may have activated another key meanwhile: that one stands.
    await reload()
    if (record?.key !== current.key) return refresh()
    if (answer.kind === 'lease') {
      await save(leaseRecord(current.key, answer))
    } else {
      log.warn({ reason: answer.reason }, 'licence: the licence server could not be reached; retrying with backoff')
      await save(failedRecord(record, answer.reason))
    }
    refresh()
  }

  const activateConfiguredKey = async (): Promise<void> => {
    const key = license?.key
    if (key === undefined || record !== undefined) return
    const answer = await ask(key)
    await reload()
    if (record !== undefined) return refresh()
    if (answer.kind === 'lease') {
      pending = undefined
      await save(leaseRecord(key, answer))
    } else {
      pending = answer.reason
      pendingFailures++
      pendingRetryAt = now() + retryDelayMs(pendingFailures, random)
      log.warn({ reason: answer.reason }, 'licence: CAT_LICENSE_KEY could not be activated; retrying with backoff')
    }
    refresh()
  }

  const tickNow = async (): Promise<void> => {
    if (license === undefined) return
    try {
      await reload()
      if (record !== undefined && now() >= record.nextCheckAt) await validateNow()
      else if (record === undefined && license.key !== undefined && now() >= pendingRetryAt) await activateConfiguredKey()
    } catch (error) {
      // The database away: the state stands on what was last read, and the next tick tries again.
      log.warn({ reason: databaseReason(error) }, 'licence: the stored licence could not be read or written')
    }
    refresh()
  }

  return {
    get view() {
      return view
    },
    get licensed() {
      return licensed
    },
    load: () => exclusive(async () => {
      if (license === undefined) return
      await reload()
      refresh()
    }),
    tick: () => exclusive(tickNow),
    validate: () => exclusive(validateNow),
    settled: () => exclusive(async () => undefined),
    onChange(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    close: () => exclusive(async () => {
      await agent?.close()
      agent = undefined
    }),
    activate: (key) => exclusive(async () => {
      if (license === undefined) throw new AppError('invalid_request', 'Licensing is off on this server (CAT_LICENSE_SERVER_URL is unset): there is nothing to activate.')
      const answer = await ask(key)
      await reload()
      if (answer.kind === 'unreachable') {
        if (record?.key === key) {
          await save(failedRecord(record, answer.reason))
          refresh()
        }
        throw new AppError('unavailable', `The licence server could not be reached (${answer.reason}); nothing changed. Try again later.`, { retryAfterS: 60 })
      }
      const next = leaseRecord(key, answer)
      const outcome = evaluateLicense(license, next, now())
      // A mistyped or foreign key does not take the place of a licence in force.
      if (!isLicensed(outcome) && licensed && record !== undefined && record.key !== key) {
        throw new AppError('invalid_request', `This key cannot be activated here (${outcome.state}: ${outcome.message}); the licence in force is unchanged.`)
      }
      pending = undefined
      await save(next)
      refresh()
      return view
    }),
  }
}
