import { ConfigError, LIVE_SETTING_NAMES, checkLiveSettings, type LiveSettingName, type LiveSettings } from '../config/config.js'
import type { ActivityStore } from '../activity/activity-store.js'
import type { SettingsBus } from './settings-bus.js'

/** The name of the saved settings in cat_install_state. */
export const SETTINGS_DOCUMENT = 'settings'

/** ms between re-reads of the saved settings: with the bus's notices lost, every instance still converges within it. */
export const DEFAULT_REFRESH_MS = 2_000

export type SettingSource = 'environment' | 'saved'

export interface SettingsView {
  values: LiveSettings
  /** Per setting: saved in the dashboard (or PUT), or the environment's default. */
  sources: Record<LiveSettingName, SettingSource>
  /** When the settings were last saved, ms; null when never. */
  updatedAt: number | null
}

export interface LiveSettingsOptions {
  /** The environment's values: in force for every setting not saved. */
  defaults: LiveSettings
  store: Pick<ActivityStore, 'readInstallState' | 'writeInstallState'>
  /** Tells the other instances of a save; undefined: none (they re-read on their timer). */
  bus?: SettingsBus
  now: () => number
  log: { warn(obj: object, msg: string): void }
  /** ms between re-reads of the saved settings; 0 leaves them to the caller (tests). */
  refreshEveryMs?: number
}

/**
 * The live settings of this instance, the one source every part reads: `current` holds the
 * values in force, and listeners hear each change.
 */
export interface Settings {
  /** The values in force; a new frozen object on each change, so a reader may keep it. */
  readonly current: LiveSettings
  view(): SettingsView
  /** Called after each change of `current`, with the values before it; returns the unsubscribe function. */
  onChange(listener: (next: LiveSettings, previous: LiveSettings) => void): () => void
  /**
   * Merges `changes` (a JSON object of settings; `null` returns one to the environment's value)
   * over the saved settings, checks the result as the environment is checked, saves it, applies
   * it here and tells the other instances. Throws ConfigError with one line naming the field.
   */
  save(changes: unknown): Promise<SettingsView>
  /** Reads the saved settings and applies them when they changed. */
  refresh(): Promise<void>
  close(): void
}

type Overrides = Partial<Record<LiveSettingName, number>>

/** The saved document: the settings saved, each by its JSON field. Unknown fields (a newer version's) are left alone. */
function parseDocument(text: string): Overrides {
  const parsed: unknown = JSON.parse(text)
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the saved settings are not a JSON object')
  const overrides: Overrides = {}
  for (const name of LIVE_SETTING_NAMES) {
    const value = (parsed as Record<string, unknown>)[name]
    if (typeof value === 'number') overrides[name] = value
  }
  return overrides
}

const same = (a: LiveSettings, b: LiveSettings): boolean => LIVE_SETTING_NAMES.every((name) => a[name] === b[name])

export function createLiveSettings(options: LiveSettingsOptions): Settings {
  const { defaults, store, bus, now, log, refreshEveryMs = DEFAULT_REFRESH_MS } = options
  const listeners = new Set<(next: LiveSettings, previous: LiveSettings) => void>()
  let current: LiveSettings = defaults
  let overrides: Overrides = {}
  let updatedAt: number | null = null
  /** The stored text and time last applied: a re-read that finds them unchanged does nothing more. */
  let seen: { value: string; updatedAt: number } | undefined
  /** Refreshes and saves run one at a time, in order. */
  let tail: Promise<unknown> = Promise.resolve()
  let pending = 0
  let failing = false

  const serial = <T>(job: () => Promise<T>): Promise<T> => {
    pending += 1
    const run = tail.then(job, job).finally(() => {
      pending -= 1
    })
    tail = run.catch(() => undefined)
    return run
  }

  function apply(next: LiveSettings, nextOverrides: Overrides, nextUpdatedAt: number | null): void {
    overrides = nextOverrides
    updatedAt = nextUpdatedAt
    if (same(next, current)) return
    const previous = current
    current = next
    for (const listener of listeners) {
      try {
        listener(next, previous)
      } catch (error) {
        log.warn({ err: error }, 'applying a settings change failed')
      }
    }
  }

  /** The environment's values with `saved` over them, checked as a whole. */
  const merged = (saved: Overrides): LiveSettings => checkLiveSettings({ ...defaults, ...saved }, 'json')

  async function readAndApply(): Promise<void> {
    const stored = await store.readInstallState(SETTINGS_DOCUMENT)
    if (stored === undefined) {
      seen = undefined
      apply(defaults, {}, null)
      return
    }
    if (seen !== undefined && seen.value === stored.value && seen.updatedAt === stored.updatedAt) return
    seen = stored
    let saved: Overrides
    let next: LiveSettings
    try {
      saved = parseDocument(stored.value)
      next = merged(saved)
    } catch (error) {
      // Saved under other environment values (a timeout no longer above a raised interval), or
      // written by hand: the environment's values hold until someone saves again.
      log.warn({ err: error }, "the saved settings do not fit the environment's; the environment's values apply")
      apply(defaults, {}, stored.updatedAt)
      return
    }
    apply(next, saved, stored.updatedAt)
  }

  const view = (): SettingsView => ({
    values: current,
    sources: Object.fromEntries(LIVE_SETTING_NAMES.map((name) => [name, overrides[name] === undefined ? 'environment' : 'saved'])) as Record<LiveSettingName, SettingSource>,
    updatedAt,
  })

  const refresh = (): Promise<void> => serial(readAndApply)

  const unsubscribe = bus?.subscribe(() => {
    refresh().catch((error: unknown) => log.warn({ err: error }, 'reading the saved settings failed; will try again'))
  })

  let timer: NodeJS.Timeout | undefined
  if (refreshEveryMs > 0) {
    timer = setInterval(() => {
      if (pending > 0) return
      refresh().then(
        () => {
          failing = false
        },
        (error: unknown) => {
          // Once per outage, not once a tick.
          if (!failing) log.warn({ err: error }, 'reading the saved settings failed; will try again')
          failing = true
        },
      )
    }, refreshEveryMs)
    timer.unref()
  }

  return {
    get current() {
      return current
    },
    view,
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    save(changes) {
      return serial(async () => {
        if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
          // The kind, not the value: a text body may be long.
          const kind = changes === undefined ? 'no body' : changes === null ? 'null' : Array.isArray(changes) ? 'an array' : `a ${typeof changes}`
          throw new ConfigError(`settings: expected a JSON object of ${LIVE_SETTING_NAMES.join(', ')}, got ${kind}`)
        }
        const unknown = Object.keys(changes).find((key) => !(LIVE_SETTING_NAMES as string[]).includes(key))
        if (unknown !== undefined) throw new ConfigError(`${unknown.slice(0, 64)}: not a setting; expected only ${LIVE_SETTING_NAMES.join(', ')}`)
        // Merged over what is saved now, not what this instance last read.
        await readAndApply()
        const candidate: Record<string, unknown> = { ...overrides }
        for (const [name, value] of Object.entries(changes as Record<string, unknown>)) {
          if (value === null) delete candidate[name]
          else candidate[name] = value
        }
        const next = checkLiveSettings({ ...defaults, ...candidate } as Record<LiveSettingName, unknown>, 'json')
        const saved = candidate as Overrides
        const value = JSON.stringify(saved)
        const at = now()
        await store.writeInstallState(SETTINGS_DOCUMENT, value, at)
        seen = { value, updatedAt: at }
        apply(next, saved, at)
        // The others also re-read on their timer: a lost notice delays them, never strands them.
        if (bus !== undefined) await bus.publish().catch((error: unknown) => log.warn({ err: error }, 'telling the other instances of the new settings failed; they read them within seconds'))
        return view()
      })
    },
    refresh,
    close() {
      if (timer !== undefined) clearInterval(timer)
      unsubscribe?.()
      listeners.clear()
    },
  }
}
