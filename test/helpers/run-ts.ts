import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs a TypeScript entry point of the project as a command, the way a user runs its
 * compiled twin: from the project root, with `env` as the whole environment (tap's loaders
 * in NODE_OPTIONS are not the user's).
 */
export function runTs(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const childEnv: NodeJS.ProcessEnv = { ...env }
  delete childEnv.NODE_OPTIONS
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
