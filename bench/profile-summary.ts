/**
 * Reads a V8 CPU profile (`node --cpu-prof`, or BENCH_PROFILE=DIR npm run bench) and prints
 * where the time went: self time by function and by package, the top TOP of each.
 * `node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]`
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  children?: number[]
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount: number
}

const [file, topArg = '25'] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: profile-summary.ts FILE.cpuprofile [TOP]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] }
const total = profile.samples.length
const byFunction = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame
  const where = url.replace(/^file:\/\//, '')
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? (where.includes('/src/') ? 'src (ours)' : where === '' ? `(${functionName || 'native'})` : where.startsWith('node:') ? 'node core' : where)
  const name = `${functionName || '(anonymous)'} ${where.split('/').slice(-2).join('/')}:${lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + node.hitCount)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.hitCount)
}
// Inclusive time: a function's samples with everything it called (counted once per stack).
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const inclusive = new Map<string, number>()
const label = (node: Node): string => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^file:\/\//, '').split('/').slice(-2).join('/')}:${node.callFrame.lineNumber + 1}`
const walk = (node: Node, onStack: Set<string>): number => {
  let hits = node.hitCount
  const name = label(node)
  const fresh = !onStack.has(name)
  if (fresh) onStack.add(name)
  for (const child of node.children ?? []) hits += walk(byId.get(child) as Node, onStack)
  if (fresh) {
    onStack.delete(name)
    inclusive.set(name, (inclusive.get(name) ?? 0) + hits)
  }
  return hits
}
const root = profile.nodes[0]
if (root !== undefined) walk(root, new Set())
const show = (title: string, map: Map<string, number>): void => {
  console.log(`\n${title}`)
  for (const [name, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}%  ${name}`)
}
show('self time by package', byPackage)
show('self time by function', byFunction)
show('inclusive time by function', inclusive)
