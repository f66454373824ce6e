import { AppError } from '../errors/errors.js'
import type { LicenseManager } from './license-manager.js'

/**
 * Throws 402 license_required unless the staff side is served (licensing off, `active` or
 * `grace`). Two field reads: it runs on every staff request and every dashboard upgrade.
 */
export function assertLicensed(license: LicenseManager): void {
  if (license.licensed) return
  const { state, message } = license.view
  throw new AppError('license_required', `The licence of this install is ${state}: ${message} Until then the dashboard shows only the licence (GET /admin for the key entry).`)
}
