/**
 * Debian's Chromium (`apt-get install chromium`, which scripts/test-services.sh does), driven by
 * playwright-core. Headless and without a sandbox (the tests run as root); the background
 * networking it would start is off, as this machine reaches nothing outside it.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

// Checked when a test file loads, before it starts any server.
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/test-services.sh (apt-get install chromium)`)

/** Chromium's flags here, which the bench's dashboard scenario uses too. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync']

/** A browser closed at the test's teardown. */
export async function launchChromium(t: { teardown(fn: () => unknown): void }): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}
