/**
 * What GET /admin/api/license answers. Apart from the licence's logic (license-state.ts) and
 * free of Node's modules, so the dashboard's bundle takes these types from here.
 */

export const LICENSE_STATES = ['unlicensed', 'active', 'grace', 'expired', 'invalid', 'domain_mismatch'] as const
export type LicenseState = (typeof LICENSE_STATES)[number]

/** GET /admin/api/license. Times are ms since the epoch, null where they do not apply. */
export interface LicenseView {
  /** False: licensing is off (CAT_LICENSE_SERVER_URL unset) and nothing is restricted. */
  enabled: boolean
  state: LicenseState
  /** The licensed domain: CAT_PUBLIC_URL's host. */
  domain: string | null
  /** The end of the key's term, as the last lease says. */
  validUntil: number | null
  /** Active or grace: when the install stops if the licence server stays unreachable. */
  graceUntil: number | null
  /** When the licence server last answered. */
  checkedAt: number | null
  /** Grace: whole days left, rounded up. */
  daysLeft: number | null
  /** The key's last four characters, so staff can tell which key is in use. */
  keyHint: string | null
  /** The state in one English sentence with what to do. */
  message: string
}
