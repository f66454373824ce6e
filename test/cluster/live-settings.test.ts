/**
 * Issue 18, "How it is judged": changing the presence timeout in the dashboard's settings panel
 * changes when a contact times out on every one of three instances, within 5 s, without a
 * restart. Three real processes of src/main.ts share one Redis site and one MariaDB database;
 * the timeout is changed in headless Chromium, in the panel served by one of them.
 */
import t from 'tap'
import { adminToken, cleanRedisSite, clientToken, REDIS_URL, uniqueSite } from '../helpers/app.js'
import { createTestMysqlDatabase } from '../helpers/database.js'
import { startInstance, type Instance } from '../helpers/instance.js'
import { launchChromium } from '../helpers/browser.js'

t.setTimeout(180_000)

const OLD_TIMEOUT_S = 40
const NEW_TIMEOUT_S = 3

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const admin = (): Record<string, string> => ({ authorization: `Bearer ${adminToken()}` })

async function onlineIds(instance: Instance): Promise<string[]> {
  const { body } = await json(`${instance.origin}/admin/api/online`, { headers: admin() })
  return (body.online as { contactId: string }[]).map((p) => p.contactId)
}

/** Polls every 50 ms until `check` holds; fails naming `what` past `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<number> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return Date.now()
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('the presence timeout saved in one instance\'s dashboard applies on all three within 5 s, without a restart', async (t) => {
  const site = uniqueSite('live-settings')
  cleanRedisSite(t, site)
  const env = {
    REDIS_URL,
    CAT_SITE: site,
    DATABASE_URL: await createTestMysqlDatabase(t, 'live_settings'),
    CAT_HEARTBEAT_INTERVAL_S: '1',
    CAT_PRESENCE_TIMEOUT_S: String(OLD_TIMEOUT_S),
  }
  // The first start migrates the database; the others find it migrated.
  const first = await startInstance(t, env)
  const instances = [first, ...(await Promise.all([startInstance(t, env), startInstance(t, env)]))]
  for (const instance of instances) {
    const { status, body } = await json(`${instance.origin}/admin/api/settings`, { headers: admin() })
    t.equal(status, 200)
    t.equal(body.presenceTimeoutS, OLD_TIMEOUT_S, `${instance.origin} starts with the environment's timeout`)
  }

  const browser = await launchChromium(t)
  const page = await browser.newPage({ locale: 'en-US' })
  await page.goto(`${first.origin}/admin#token=${adminToken()}&panel=settings`)
  const timeoutInput = page.locator('cat-online-clients input[name="presenceTimeoutS"]')
  await page.waitForFunction((old) => {
    const input = document.querySelector('cat-online-clients')?.shadowRoot?.querySelector('input[name="presenceTimeoutS"]') as HTMLInputElement | null
    return input !== null && !input.disabled && input.value === String(old)
  }, OLD_TIMEOUT_S, { timeout: 10_000 })
  await timeoutInput.fill(String(NEW_TIMEOUT_S))
  await page.locator('cat-online-clients button.save').click()
  const savedAt = Date.now()
  await page.locator('cat-online-clients [part="settings"]').getByText('Saved.', { exact: false }).waitFor({ timeout: 5000 })

  // Each instance: the new timeout in force within 5 s of the save, in the same process.
  for (const instance of instances) {
    const appliedAt = await until(`${instance.origin} applies the new timeout`, async () => (await json(`${instance.origin}/admin/api/settings`, { headers: admin() })).body.presenceTimeoutS === NEW_TIMEOUT_S, 5_000)
    t.ok(appliedAt - savedAt < 5_000, `${instance.origin} applied it ${appliedAt - savedAt} ms after the save`)
  }

  // Each instance: a contact that beats once there times out NEW_TIMEOUT_S later, not OLD_TIMEOUT_S.
  await Promise.all(instances.map(async (instance, n) => {
    const sub = `live-${n}`
    const token = clientToken({ sub, clientId: 'client-live', name: `Contact ${n}` })
    const consent = await fetch(`${instance.origin}/clients/cat_consent`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ token, decision: 'granted', version: 'v1', locale: 'en' }) })
    t.equal(consent.status, 204)
    const beatAt = Date.now()
    const beat = await fetch(`${instance.origin}/cat_heartbeat?token=${token}&sid=tab-live-000${n}&path=/clients&event=nav`)
    t.equal(beat.status, 204)
    t.equal(beat.headers.get('cat-interval'), '1')
    t.ok((await onlineIds(instance)).includes(sub), `contact ${n} is online on ${instance.origin}`)
    const goneAt = await until(`contact ${n} times out`, async () => !(await onlineIds(instance)).includes(sub), (OLD_TIMEOUT_S - 10) * 1000)
    const after = goneAt - beatAt
    t.ok(after >= NEW_TIMEOUT_S * 1000 - 100, `contact ${n} stayed the new timeout at least (${after} ms)`)
    // The sweeper runs each second; the poll adds 50 ms.
    t.ok(after < NEW_TIMEOUT_S * 1000 + 2_500, `contact ${n} left ${after} ms after its beat, by the new ${NEW_TIMEOUT_S} s (not ${OLD_TIMEOUT_S} s)`)
  }))

  for (const instance of instances) {
    t.equal(await Promise.race([instance.exited.then(() => 'exited'), Promise.resolve('running')]), 'running', `${instance.origin} was never restarted`)
    t.equal(instance.output().match(/Server listening at/g)?.length, 1, 'it started once')
  }
})
