import type { CatStrings } from './strings'

declare global {
  /** Injected by the server around the bundle: `(function(){var __CAT_L={…};…})();`. Must stay a free identifier. */
  const __CAT_L: CatStrings

  interface Navigator {
    /** Global Privacy Control (https://privacycg.github.io/gpc-spec/). */
    readonly globalPrivacyControl?: boolean
  }

  interface Window {
    CAT?: CatApi
  }

  type CatStatus = 'granted' | 'denied' | 'withdrawn' | 'unknown'

  interface CatApi {
    /** Withdraws consent: records `withdrawn` and stops all heartbeats at once. */
    withdraw(): void
    /** Grants consent (as the banner's Accept does). */
    grant(): void
    status(): CatStatus
  }
}

export {}
