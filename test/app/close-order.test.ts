/**
 * The shutdown order, as a dashboard and an operator see it: dashboards are told 1012 while
 * the engine still runs, the activity writer's last flush finds the event log and the database
 * open, the shared state closes before the database, and a start that fails halfway closes
 * what it had opened.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { buildApp } from '../../src/app.js'
import * as sharedStateModule from '../../src/shared-state.js'
import * as databaseModule from '../../src/activity/database.js'
import * as writerModule from '../../src/activity/activity-writer.js'
import * as hubModule from '../../src/hub/diff-hub.js'
import { adminToken, cleanRedisSite, clientToken, ensureConsent, heartbeatUrl, testConfig, uniqueSite, REDIS_URL } from '../helpers/app.js'
import { connectDashboard, type Dashboard } from '../helpers/ws.js'
import { createTestDataDir } from '../helpers/database.js'

/** What keeps the process alive, by kind: sockets, timers, servers. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** The handles of `now` beyond those of `before`, by kind. */
function leftOpen(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const extra: Record<string, number> = {}
  for (const [kind, count] of Object.entries(now)) if (count > (before[kind] ?? 0)) extra[kind] = count - (before[kind] ?? 0)
  return extra
}

/** The handles opened since `before` and still open after up to 2 s (sockets finish closing on later turns). */
async function openedSince(before: Record<string, number>): Promise<Record<string, number>> {
  for (let i = 0; i < 200 && Object.keys(leftOpen(before, resources())).length > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10))
  return leftOpen(before, resources())
}

type BuildApp = typeof buildApp

/** The plugin module that imports each replaced module, so the replacement reaches it. */
const IMPORTED_BY: Record<string, string> = {
  '../../src/shared-state.js': '../../src/plugins/shared-state.js',
  '../../src/activity/database.js': '../../src/plugins/database.js',
  '../../src/activity/activity-writer.js': '../../src/plugins/activity.js',
  '../../src/hub/diff-hub.js': '../../src/plugins/hub.js',
}

/**
 * buildApp with some of the modules its plugins import replaced. tap replaces the imports of
 * the module it loads only, so each plugin is loaded with its replacement, then the app with
 * those plugins.
 */
async function buildAppWith(t: Test, replacements: Record<string, Record<string, unknown>>): Promise<BuildApp> {
  const plugins: Record<string, Record<string, unknown>> = {}
  for (const [module, replacement] of Object.entries(replacements)) {
    const plugin = IMPORTED_BY[module]
    if (plugin === undefined) throw new Error(`no plugin imports ${module}`)
    plugins[plugin] = await t.mockImport<Record<string, unknown>>(plugin, { [module]: replacement })
  }
  const app = await t.mockImport<typeof import('../../src/app.js')>('../../src/app.js', plugins)
  return app.buildApp
}

/**
 * buildApp with the closes of the shared state, the database and the writer recorded in
 * `steps`, each with whether the dashboard had been told to close by then.
 */
async function recordingBuildApp(t: Test, steps: string[], dashboard: () => Dashboard | undefined): Promise<BuildApp> {
  const told = (): string => {
    const socket = dashboard()?.socket
    return socket === undefined || socket.readyState === WebSocket.OPEN ? 'dashboard open' : 'dashboard told'
  }
  return buildAppWith(t, {
    '../../src/shared-state.js': {
      ...sharedStateModule,
      openSharedState: async (...args: Parameters<typeof sharedStateModule.openSharedState>) => {
        const shared = await sharedStateModule.openSharedState(...args)
        return {
          ...shared,
          close: async () => {
            steps.push(`shared state closes (${told()})`)
            await shared.close()
          },
        }
      },
    },
    '../../src/activity/database.js': {
      ...databaseModule,
      openDatabase: async (...args: Parameters<typeof databaseModule.openDatabase>) => {
        const database = await databaseModule.openDatabase(...args)
        const close = database.close.bind(database)
        database.close = async () => {
          steps.push('database closes')
          await close()
        }
        return database
      },
    },
    '../../src/activity/activity-writer.js': {
      ...writerModule,
      createActivityWriter: (...args: Parameters<typeof writerModule.createActivityWriter>) => {
        const writer = writerModule.createActivityWriter(...args)
        return {
          ...writer,
          stop: async (options?: { drainMs?: number }) => {
            steps.push(`writer flushes for ${options?.drainMs ?? 0} ms (${told()})`)
            await writer.stop(options)
            steps.push('writer flushed')
          },
          get stalled() {
            return writer.stalled
          },
        }
      },
    },
  })
}

for (const engine of ['memory', 'redis'] as const) {
  t.test(`close order (${engine}): dashboards 1012, writer flush, shared state, database`, async (t) => {
    const steps: string[] = []
    const connected: { dashboard?: Dashboard } = {}
    const build = await recordingBuildApp(t, steps, () => connected.dashboard)
    const site = uniqueSite('order')
    if (engine === 'redis') cleanRedisSite(t, site)
    const dataDir = createTestDataDir(t, 'order')
    const config = testConfig(engine === 'redis' ? { REDIS_URL, CAT_SITE: site, CAT_DATA_DIR: dataDir } : { CAT_DATA_DIR: dataDir })
    const app = await build(config, { sweepIntervalMs: 50 })
    const token = clientToken({ sub: 'order-1' })
    await ensureConsent(app, token)
    t.equal((await app.inject(heartbeatUrl({ token, sid: 'ordertab1', event: 'nav' }))).statusCode, 204)
    const dash = await connectDashboard(app, adminToken())
    connected.dashboard = dash
    await dash.waitFor((m) => m.type === 'snapshot')

    await app.close()
    t.equal((await dash.closed).code, 1012, 'the dashboard was closed with 1012')
    t.same(steps, [
      `writer flushes for ${engine === 'memory' ? 5000 : 0} ms (dashboard told)`,
      'writer flushed',
      'shared state closes (dashboard told)',
      'database closes',
    ], 'dashboards are told first, then the writer flushes, then the shared state and the database close')
  })
}

t.test('events acknowledged before close are in the database after close (memory engine)', async (t) => {
  const dataDir = createTestDataDir(t, 'flush')
  const lines: string[] = []
  const config = testConfig({ CAT_DATA_DIR: dataDir, LOG_LEVEL: 'warn' })
  // No writer loop: every event waits in the memory event log for the writer's last flush.
  const app = await buildApp(config, { sweepIntervalMs: 50, activityLoops: false, logStream: { write: (line: string) => void lines.push(line) } })
  const token = clientToken({ sub: 'flush-1' })
  await ensureConsent(app, token)
  const paths = ['/a', '/b', '/c']
  for (const path of paths) t.equal((await app.inject(heartbeatUrl({ token, sid: 'flushtab1', event: 'nav', path }))).statusCode, 204, `${path} acknowledged`)
  await app.close()
  t.same(lines, [], 'nothing logged at warn or above while closing')

  const reopened = await buildApp(config, { sweepIntervalMs: 0, activityLoops: false })
  t.teardown(() => reopened.close())
  const exported = await reopened.activity.exportContact('flush-1')
  t.same(exported.events.filter((event) => event.type === 'nav' || event.type === 'join').map((event) => event.path), paths, 'every acknowledged event was written')
})

t.test('a start that fails halfway closes what it had opened', async (t) => {
  t.test('the database down at start: the start fails, no handle is left', async (t) => {
    const before = resources()
    const site = uniqueSite('down')
    cleanRedisSite(t, site)
    const config = testConfig({ REDIS_URL, CAT_SITE: site, DATABASE_URL: 'mysql://cat:s3cret@127.0.0.1:1/cat', CAT_DATA_DIR: createTestDataDir(t, 'down') })
    await t.rejects(buildApp(config, { sweepIntervalMs: 50 }), { code: 'ECONNREFUSED' })
    t.same(await openedSince(before), {}, 'no open handle')
  })

  t.test('a failure after the shared state opened: the shared state and the database are closed', async (t) => {
    const before = resources()
    const site = uniqueSite('half')
    cleanRedisSite(t, site)
    const steps: string[] = []
    const failing = await buildAppWith(t, {
      '../../src/shared-state.js': {
        ...sharedStateModule,
        openSharedState: async (...args: Parameters<typeof sharedStateModule.openSharedState>) => {
          const shared = await sharedStateModule.openSharedState(...args)
          return {
            ...shared,
            close: async () => {
              steps.push('shared state closes')
              await shared.close()
            },
          }
        },
      },
      '../../src/hub/diff-hub.js': {
        ...hubModule,
        createDiffHub: () => {
          throw new Error('the hub cannot start')
        },
      },
    })
    const config = testConfig({ REDIS_URL, CAT_SITE: site, CAT_DATA_DIR: createTestDataDir(t, 'half') })
    await t.rejects(failing(config, { sweepIntervalMs: 50 }), { message: 'the hub cannot start' }, "the start's own error")
    t.same(steps, ['shared state closes'])
    t.same(await openedSince(before), {}, 'no open handle: Redis connections, the writer and the database are closed')
  })
})
