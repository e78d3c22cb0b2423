import t from 'tap'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'

const { app, database, config, redis } = await buildTestApp(t, 'http_metrics')
const order = await insertKnownOrder(database.db)

const scrape = async (): Promise<string> => {
  const res = await app.inject('/metrics')
  if (res.statusCode !== 200) throw new Error(`metrics: ${res.statusCode}`)
  return res.body
}
/** The value of a sample with this name and these labels (in any order, others allowed). */
const value = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) &&
    Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

t.test('requests by route and status, and where the answers came from', async (t) => {
  for (let i = 0; i < 3; i++) await app.inject(`/query?sno=${order.sno}`)
  await app.inject('/query?sno=424242')
  await app.inject('/query?sno=abc')
  const text = await scrape()
  t.match((await app.inject('/metrics')).headers['content-type'], /text\/plain; version=0\.0\.4/)
  t.equal(value(text, 'logistics_http_request_duration_seconds_count', { route: '/query', method: 'GET', status: '200' }), 3)
  t.equal(value(text, 'logistics_http_request_duration_seconds_count', { route: '/query', method: 'GET', status: '404' }), 1)
  t.equal(value(text, 'logistics_http_request_duration_seconds_count', { route: '/query', method: 'GET', status: '400' }), 1)
  t.ok((value(text, 'logistics_query_answers_total', { source: 'database' }) ?? 0) >= 2, 'misses counted')
  t.ok((value(text, 'logistics_query_answers_total', { source: 'near' }) ?? 0) + (value(text, 'logistics_query_answers_total', { source: 'redis' }) ?? 0) >= 1, 'hits counted')
  t.match(text, /logistics_process_cpu_seconds_total/, 'the process\'s own figures')
  t.notMatch(text, /logistics_nodejs_gc_duration_seconds/, 'but not its collections, unless METRICS_GC is set')
})

t.test('the platform\'s figures: change-log backlog, last report, consumer intake', async (t) => {
  await app.writer.applyEvents([{ event_id: 'm-1', sno: order.sno, status: 'Exception', location_id: 3, occurred_at: new Date() }])
  await redis.set(`${config.redis.keyPrefix}metrics:report:last`, '1796000000')
  await redis.sadd(`${config.redis.keyPrefix}metrics:ingest`, 'metrics:ingest:test-1')
  await redis.hset(`${config.redis.keyPrefix}metrics:ingest:test-1`, { received: 10, stored: 8, dead_lettered_EVENT_INVALID: 2 })
  await new Promise((resolve) => setTimeout(resolve, 5100)) // past the 5 s the figures are kept
  t.ok(await eventually(async () => value(await scrape(), 'logistics_change_log_backlog', { relay: 'cache' }) !== undefined, 10_000), 'the cache relay\'s backlog')
  const text = await scrape()
  t.equal(value(text, 'logistics_last_report_timestamp_seconds'), 1796000000)
  t.equal(value(text, 'logistics_queue_intake_total', { counter: 'stored' }), 8)
  t.equal(value(text, 'logistics_queue_intake_total', { counter: 'dead_lettered_EVENT_INVALID' }), 2)
})

t.test('only for admins (loopback when no token is configured)', async (t) => {
  const outside = await app.inject({ url: '/metrics', remoteAddress: '203.0.113.5' })
  t.equal(outside.statusCode, 403)
})
