import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

/** Where a frame lives: our source file, a package, Node itself, or the VM (GC, idle). */
function owner (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]
  if (url.startsWith('node:')) return url
  const ours = /\/(dist|src)\/(.+)$/.exec(url)
  return ours !== null ? ours[2] : url
}

/**
 * The self time of a --cpu-prof profile, by function and by owner (package, file): the text
 * form of a flame graph's widest bars.
 */
export function summarizeProfile (file: string, top = 20): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] }
  const total = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0)
  const byFunction = new Map<string, number>()
  const byOwner = new Map<string, number>()
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    if (hits === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    const where = owner(url, functionName)
    const key = `${functionName || '(anonymous)'}  ${where}${url === '' ? '' : `:${lineNumber + 1}`}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits)
    byOwner.set(where, (byOwner.get(where) ?? 0) + hits)
  }
  const pct = (n: number): string => `${((n / total) * 100).toFixed(1).padStart(5)}%`
  const list = (m: Map<string, number>): string => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, n]) => `  ${pct(n)}  ${k}`).join('\n')
  return `self time by owner:\n${list(byOwner)}\n\nself time by function:\n${list(byFunction)}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(summarizeProfile(process.argv[2] ?? '', Number(process.argv[3] ?? 30)))
}
