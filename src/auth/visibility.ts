import { createHash } from 'node:crypto'

/**
 * Which clients' contacts an admin token sees: every client (no `clients` claim), or the
 * clients its `clients` claim lists. Dashboards whose tokens see the same clients share one
 * `key`, and with it each serialised message.
 */
export interface Visibility {
  /** Same for every token that sees the same clients, whatever their order in the claim. */
  readonly key: string
  /** True without a `clients` claim. */
  readonly all: boolean
  /** True when contacts of `clientId` are visible. */
  sees(clientId: string): boolean
  /** The clients listed, when not all; in no particular order. */
  readonly clients: ReadonlySet<string> | undefined
}

export const EVERY_CLIENT: Visibility = Object.freeze({ key: '*', all: true, sees: () => true, clients: undefined })

/** The visibility of a `clients` claim: those clients only (none when the list is empty). */
export function visibilityOf(clients: Iterable<string>): Visibility {
  const set = new Set(clients)
  // Ids have no control characters (tokens.ts): NUL separates them unambiguously.
  const key = createHash('sha256').update([...set].sort().join('\u0000')).digest('base64url')
  return Object.freeze({ key, all: false, sees: (clientId: string) => set.has(clientId), clients: set })
}

/** The items of `list` whose client `visibility` sees: `list` itself when it sees every client. */
export function visibleOnly<T>(list: readonly T[], visibility: Visibility, clientOf: (item: T) => string): readonly T[] {
  return visibility.all ? list : list.filter((item) => visibility.sees(clientOf(item)))
}
