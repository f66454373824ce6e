/**
 * Chromium driven over the DevTools protocol directly (a WebSocket, flattened sessions), for the
 * dashboard scenario: only the domains it measures with (Page, Runtime, Input, Performance,
 * HeapProfiler, Tracing) are enabled. playwright-core enables the Network domain on every page,
 * which makes the renderer hand each WebSocket message to DevTools: a 22 MB snapshot costs the
 * page's main thread and the browser's frames seconds that a staff member's browser never spends.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { CHROMIUM, CHROMIUM_ARGS } from '../test/helpers/browser.js'

interface Message {
  id?: number
  method?: string
  params?: Record<string, unknown>
  result?: Record<string, unknown>
  error?: { message: string }
  sessionId?: string
}

export interface CdpPage {
  send<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>): Promise<T>
  /** A JavaScript expression's value in the page (awaited when a promise). */
  evaluate<T>(expression: string): Promise<T>
  /** Polls `expression` until it is truthy; its value. */
  waitFor<T>(expression: string, timeoutMs?: number): Promise<T>
  close(): Promise<void>
}

export interface CdpBrowser {
  /** A page of a fresh browser context, `script` run before the page's own, then navigated to `url`. */
  open(url: string, script: string): Promise<CdpPage>
  /** Trace events (devtools.timeline) recorded while `during` runs. */
  trace(during: () => Promise<void>): Promise<Record<string, unknown>[]>
  close(): Promise<void>
}

/** How long Chromium may take to start listening, and to answer one command (a trace's end is the slowest). */
const LAUNCH_TIMEOUT_MS = 30_000
const COMMAND_TIMEOUT_MS = 120_000

export async function launchCdpChromium(viewport: { width: number; height: number }): Promise<CdpBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'cat-bench-chromium-'))
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${viewport.width},${viewport.height}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  const endpoint = await new Promise<string>((resolve, reject) => {
    let err = ''
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString()
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(err)
      if (found) resolve(found[1] as string)
    })
    child.once('exit', (code) => reject(new Error(`chromium exited with ${code}: ${err.slice(-500)}`)))
    setTimeout(() => reject(new Error(`chromium did not listen within ${LAUNCH_TIMEOUT_MS} ms: ${err.slice(-500)}`)), LAUNCH_TIMEOUT_MS).unref()
  })
  const socket = new WebSocket(endpoint, { maxPayload: 1 << 30 })
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  let nextId = 0
  const waiting = new Map<number, { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void }>()
  const listeners = new Set<(message: Message) => void>()
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as Message
    if (message.id !== undefined) {
      const pending = waiting.get(message.id)
      waiting.delete(message.id)
      if (message.error) pending?.reject(new Error(message.error.message))
      else pending?.resolve(message.result ?? {})
    } else for (const listener of listeners) listener(message)
  })
  // A browser gone, or a command it never answers, fails the scenario instead of holding it forever.
  socket.once('close', () => {
    for (const pending of waiting.values()) pending.reject(new Error('the DevTools connection to chromium closed'))
    waiting.clear()
  })
  const send = <T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> => new Promise((resolve, reject) => {
    const id = ++nextId
    const timer = setTimeout(() => {
      waiting.delete(id)
      reject(new Error(`chromium did not answer ${method} within ${COMMAND_TIMEOUT_MS} ms`))
    }, COMMAND_TIMEOUT_MS)
    const settle = <A>(fn: (a: A) => void) => (a: A): void => {
      clearTimeout(timer)
      fn(a)
    }
    waiting.set(id, { resolve: settle(resolve as (value: Record<string, unknown>) => void), reject: settle(reject) })
    socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }))
  })

  return {
    async open(url, script) {
      const { browserContextId } = await send<{ browserContextId: string }>('Target.createBrowserContext')
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url: 'about:blank', browserContextId })
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true })
      const page: CdpPage = {
        send: (method, params) => send(method, params, sessionId),
        async evaluate<T>(expression: string) {
          const { result, exceptionDetails } = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId)
          if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.text}`)
          return result.value as T
        },
        async waitFor<T>(expression: string, timeoutMs = 60_000) {
          const deadline = Date.now() + timeoutMs
          for (;;) {
            const value = await page.evaluate<T>(expression)
            if (value) return value
            if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${expression}`)
            await new Promise((resolve) => setTimeout(resolve, 50))
          }
        },
        async close() {
          await send('Target.closeTarget', { targetId })
          await send('Target.disposeBrowserContext', { browserContextId })
        },
      }
      await page.send('Page.enable')
      await page.send('Performance.enable')
      await page.send('Page.addScriptToEvaluateOnNewDocument', { source: script })
      await page.send('Page.navigate', { url })
      return page
    },
    async trace(during) {
      const events: Record<string, unknown>[] = []
      let complete: () => void = () => {}
      const done = new Promise<void>((resolve) => (complete = resolve))
      const listener = (message: Message): void => {
        if (message.method === 'Tracing.dataCollected') events.push(...((message.params?.value ?? []) as Record<string, unknown>[]))
        if (message.method === 'Tracing.tracingComplete') complete()
      }
      listeners.add(listener)
      await send('Tracing.start', { traceConfig: { includedCategories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] }, transferMode: 'ReportEvents' })
      try {
        await during()
      } finally {
        await send('Tracing.end')
        await done
        listeners.delete(listener)
      }
      return events
    },
    async close() {
      socket.close()
      const exited = new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)))
      // The whole process group: Chromium's helper processes otherwise go on writing to the profile.
      try {
        process.kill(-(child.pid as number), 'SIGTERM')
      } catch {
        // already gone
      }
      await exited
      await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }).catch((error: unknown) => console.error(`chromium profile ${profile} left behind: ${String(error)}`))
    },
  }
}
