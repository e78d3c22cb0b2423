import t from 'tap'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { freePort, PrivateRedis } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { eventually } from '../helpers/app.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { trackingService } from '../helpers/tracking.js'
import autocannon from 'autocannon'

/**
 * Redis killed, frozen and absent at start-up, on a private redis-server. "Does not hang" is
 * checked against a generous limit (a request stuck on Redis would wait for minutes or for
 * ever); the latencies seen are printed, not asserted.
 */
const HANG = 3000

const server = await PrivateRedis.start(t)
const config = testConfig('tracking_redis_faults', { REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: '100' })
const { db } = await freshDatabase(t, config)
const app = await buildApp(config)
t.teardown(async () => await app.close())
const order = await insertKnownOrder(db)
const key = `${config.redis.keyPrefix}track:v1:{${order.sno}}`

async function timedQuery (sno: number): Promise<{ status: number, ms: number }> {
  const started = performance.now()
  const res = await Promise.race([
    app.inject(`/query?sno=${sno}`),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`/query hung for ${HANG} ms`)), HANG))
  ])
  return { status: res.statusCode, ms: performance.now() - started }
}

async function probe (): Promise<Redis> {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return client
}

t.test('killed: answers from MySQL, then uses the cache again once Redis is back', async (t) => {
  t.equal((await timedQuery(order.sno)).status, 200)
  const direct = await probe()
  t.ok(await eventually(async () => await direct.exists(key) === 1), 'cached while Redis is up')
  direct.disconnect()

  server.kill()
  const during = []
  for (let i = 0; i < 20; i++) during.push(await timedQuery(order.sno))
  t.ok(during.every((r) => r.status === 200), '20 lookups answered 200 with Redis dead')
  t.comment(`with Redis killed: worst ${Math.max(...during.map((r) => r.ms)).toFixed(1)} ms`)

  await server.start()
  const back = await probe()
  t.ok(await eventually(async () => {
    await timedQuery(order.sno)
    return await back.exists(key) === 1
  }, 10_000), 'the cache is filled again after Redis restarts (no restart of the API)')
  back.disconnect()
})

t.test('frozen (SIGSTOP): every lookup is answered within the bound, then recovery', async (t) => {
  server.freeze()
  const results = await Promise.all(Array.from({ length: 30 }, async () => await timedQuery(order.sno)))
  t.ok(results.every((r) => r.status === 200), '30 concurrent lookups answered 200 with Redis frozen')
  const later = []
  for (let i = 0; i < 10; i++) later.push(await timedQuery(order.sno))
  t.ok(later.every((r) => r.status === 200))
  t.comment(`frozen: first wave worst ${Math.max(...results.map((r) => r.ms)).toFixed(1)} ms, ` +
    `after the circuit opened worst ${Math.max(...later.map((r) => r.ms)).toFixed(1)} ms`)

  server.thaw()
  const direct = await probe()
  await direct.del(key)
  t.ok(await eventually(async () => {
    await timedQuery(order.sno)
    return await direct.exists(key) === 1
  }, 10_000), 'the cache is used again after SIGCONT')
  direct.disconnect()
})

t.test('the API starts and answers while Redis is down', async (t) => {
  const deadPort = await freePort()
  const offline = testConfig('tracking_redis_faults', { REDIS_URL: `redis://127.0.0.1:${deadPort}/0` })
  const lonely = await buildApp(offline)
  t.teardown(async () => await lonely.close())
  await lonely.ready()
  const res = await lonely.inject(`/query?sno=${order.sno}`)
  t.equal(res.statusCode, 200)
  t.match(res.json().recipient.name, '李大同')
  const health = await lonely.inject('/health')
  t.equal(health.statusCode, 200, 'healthy enough: MySQL is up')
  t.same(health.json(), { status: 'degraded', mysql: 'up', redis: 'down' })
})

t.test('slow Redis (every reply 300 ms late): lookups do not wait for it', async (t) => {
  const proxy = await TcpProxy.start(t, server.port)
  proxy.latencyMs = 300
  const slow = await buildApp(testConfig('tracking_redis_faults', { REDIS_URL: `redis://127.0.0.1:${proxy.port}/0`, REDIS_COMMAND_TIMEOUT_MS: '100' }))
  t.teardown(async () => await slow.close())
  await slow.ready()
  const results = []
  for (let i = 0; i < 15; i++) {
    const started = performance.now()
    const res = await slow.inject(`/query?sno=${order.sno}`)
    results.push({ status: res.statusCode, ms: performance.now() - started })
  }
  t.ok(results.every((r) => r.status === 200), '15 lookups answered 200')
  t.comment(`slow Redis: worst ${Math.max(...results.map((r) => r.ms)).toFixed(0)} ms, median ${results.map((r) => r.ms).sort((a, b) => a - b)[7].toFixed(0)} ms (Redis replies take 600 ms round trip)`)
})

t.test('no unbounded queue of commands while Redis is frozen', async (t) => {
  const { service, guard } = trackingService(t, config, db, server.url)
  await guard.waitUntilReady(2000)
  server.freeze()
  t.teardown(() => server.thaw())
  for (let wave = 0; wave < 20; wave++) {
    await Promise.all(Array.from({ length: 100 }, async () => await service.lookup(order.sno)))
  }
  const client = guard.redis as unknown as { commandQueue: { length: number }, offlineQueue: { length: number } }
  t.equal(client.offlineQueue.length, 0, 'nothing queued for later')
  t.ok(client.commandQueue.length <= 100, `at most one wave of commands awaiting replies (${client.commandQueue.length} after 2000 lookups)`)
})

t.test('under load: Redis killed and restarted, zero 5xx', async (t) => {
  const loaded = await buildApp(testConfig('tracking_redis_faults', { REDIS_URL: server.url, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' }))
  t.teardown(async () => await loaded.close())
  const address = await loaded.listen({ port: 0, host: '127.0.0.1' })
  const run = autocannon({ url: `${address}/query?sno=${order.sno}`, connections: 20, duration: 5 })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  server.kill()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await server.start()
  const result = await run
  const fiveHundreds = result['5xx']
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(fiveHundreds, 0, 'no 5xx')
  t.equal(result.non2xx, 0, 'every answer 200')
  t.ok(result.requests.total > 500)
  t.comment(`Redis killed for 1.5 s of a 5 s load: ${result.requests.total} requests, ${result.non2xx} non-2xx, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`)
})

t.test('an invalidation that does not reach Redis is replayed from the change log', async (t) => {
  const o = await insertKnownOrder(db)
  const direct = await probe()
  t.teardown(() => direct.disconnect())
  const bodyKey = `${config.redis.keyPrefix}track:v1:{${o.sno}}`
  await app.inject(`/query?sno=${o.sno}`)
  t.ok(await eventually(async () => await direct.exists(bodyKey) === 1), 'cached')

  // Redis frozen while the write commits: the writer's own invalidation times out.
  server.freeze()
  const [result] = await app.writer.applyEvents([{ event_id: 'late-scan-1', sno: o.sno, status: 'Exception', location_id: 3, occurred_at: new Date() }])
  t.equal(result.result, 'accepted')
  server.thaw()
  t.ok(await eventually(async () => await direct.exists(bodyKey) === 0, 10_000), 'the relay sent it again: the old answer is gone')
  t.ok(await eventually(async () => (await app.inject(`/query?sno=${o.sno}`)).json().details.length === 7, 10_000), 'the new event shows')
})
