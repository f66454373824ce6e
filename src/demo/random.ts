/** A source of numbers in [0, 1), as Math.random gives them. */
export type Random = () => number

/**
 * A seeded source (mulberry32): the same seed gives the same sequence, so a test of the demo
 * traffic replays the same browsing.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** A number uniformly in [min, max). */
export function between(random: Random, min: number, max: number): number {
  return min + random() * (max - min)
}

/** One of `items`, each as likely. */
export function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T
}

const ID_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** A tab id as the snippet makes one: 16 of A-Z a-z 0-9 - _. */
export function tabId(random: Random): string {
  let id = ''
  for (let i = 0; i < 16; i += 1) id += ID_CHARACTERS[Math.floor(random() * ID_CHARACTERS.length)]
  return id
}
