import { collectDefaultMetrics, Registry } from 'prom-client'
import t from 'tap'
import { collectProcessMetrics } from '../../src/http/process-metrics.js'
import { loadConfig } from '../../src/config.js'

// The API's process figures: prom-client's default metrics, its GC histogram only on demand
// (METRICS_GC), since Node's entry for every collection costs the hit's p99.
const names = async (registry: Registry): Promise<string[]> => (await registry.getMetricsAsJSON()).map((m) => m.name).sort()

t.test('without GC: every default metric of the library but the GC histogram', async (t) => {
  const library = new Registry()
  collectDefaultMetrics({ register: library, prefix: 'lib_' })
  const ours = new Registry()
  t.equal(collectProcessMetrics(ours, 'lib_', false), false, 'the GC histogram off')
  const expected = (await names(library)).filter((name) => name !== 'lib_nodejs_gc_duration_seconds')
  t.ok(expected.length > 10, 'the library collects its usual figures')
  t.same(await names(ours), expected)
  t.match(await ours.metrics(), /^lib_process_cpu_seconds_total \d/m, 'and they are read')
})

t.test('with GC: the library\'s default metrics as they are, GC histogram included', async (t) => {
  const ours = new Registry()
  t.equal(collectProcessMetrics(ours, 'gc_', true), true)
  t.ok((await names(ours)).includes('gc_nodejs_gc_duration_seconds'))
})

t.test('METRICS_GC turns it on; off by default', async (t) => {
  t.equal(loadConfig({}).metricsGc, false)
  t.equal(loadConfig({ METRICS_GC: 'true' }).metricsGc, true)
})
