/** What the `million` scenario (scenarios/million.ts) asks of its server (million-server.ts). */
export interface MillionSpec {
  site: string
  online: number
  /** The first `leaving` contacts get no heartbeat in the run: they expire during it. */
  leaving: number
  leavingPerS: number
}

/** Seconds into the run at which the first leaving contact expires. */
export const LEAVING_FROM_S = 15
