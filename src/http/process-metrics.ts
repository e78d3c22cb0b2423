import { createRequire } from 'node:module'
import { collectDefaultMetrics, type Registry } from 'prom-client'

const require = createRequire(import.meta.url)
type Collector = (registry: Registry, config: { prefix: string, eventLoopMonitoringPrecision: number }) => void

/**
 * prom-client's default metrics (CPU, memory, heap spaces, event-loop lag, handles, …), with its
 * GC histogram only when `gc` is set. That histogram observes Node's `gc` performance entries, and
 * Node builds one for every collection (about 37 a second under a load of cache hits). In A/Bs
 * against a bare server, in turns, the hit's p99 was 1.18–1.25× the bare server's with it and
 * 0.98–1.14× without (docs/performance.md). Without it, each of the library's other collectors is
 * loaded by the name the library lists (so a new one in a later version comes along too), from
 * its files; should a version no longer have them there, all its defaults are collected, GC too.
 * Returns whether the GC histogram is collected.
 */
export function collectProcessMetrics (registry: Registry, prefix: string, gc: boolean): boolean {
  const config = { prefix, eventLoopMonitoringPrecision: 10 }
  const collectors = gc ? undefined : loadCollectors(collectDefaultMetrics.metricsList.filter((name) => name !== 'gc'))
  if (collectors === undefined) {
    collectDefaultMetrics({ register: registry, ...config })
    return true
  }
  for (const collect of collectors) collect(registry, config)
  return false
}

function loadCollectors (names: string[]): Collector[] | undefined {
  try {
    return names.map((name) => require(`prom-client/lib/metrics/${name}`) as Collector)
  } catch {
    return undefined
  }
}
