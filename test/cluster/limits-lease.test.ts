import t from 'tap'
import { Cluster } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { createRedis, RedisGuard, type RedisClient } from '../../src/infra/redis.js'
import { createLogger } from '../../src/logger.js'
import { acquireLease } from '../../src/reports/lock.js'
import { SharedCounter } from '../../src/http/rate-limit.js'
import { keySlot } from '../../src/infra/redis-cluster.js'
import { IngestCounters, INGEST_METRICS_SET } from '../../src/ingest/counters.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { eventually } from '../helpers/app.js'

/** Rate limits across two API instances, the report lease and the consumer's counters, on a real 3-master Redis Cluster. */

const cluster = await RedisCluster.start(t)
const logger = createLogger('silent')

t.test('rate limits hold across two app instances sharing the cluster', async (t) => {
  const config = testConfig('cluster_limits', { REDIS_CLUSTER_NODES: cluster.nodes, RATE_LIMIT_PER_MINUTE: '20' })
  const { db } = await freshDatabase(t, config)
  const order = await insertKnownOrder(db)
  const apps = [await buildApp(config), await buildApp(config)]
  for (const app of apps) {
    t.teardown(async () => await app.close())
    await app.ready()
  }
  const admin = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 1 } })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  // Counts are per minute: do not straddle the start of a new one.
  if (60_000 - (Date.now() % 60_000) < 10_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - (Date.now() % 60_000) + 50))
  const window = Math.floor(Date.now() / 60_000)
  const counterKey = (ip: string): string => `${config.redis.keyPrefix}rl:all:${window}:${ip}`
  const counted = async (ip: string): Promise<{ processes: number, total: number }> => {
    const values = await admin.hvals(counterKey(ip))
    return { processes: values.length, total: values.reduce((sum, v) => sum + Number(v), 0) }
  }
  // Clients whose counters live on different masters.
  const clients = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5', '198.51.100.6']
  const masters = new Set(await Promise.all(clients.map(async (ip) => await cluster.ownerOf(keySlot(counterKey(ip))))))
  t.ok(masters.size >= 2, `the clients' counters live on ${masters.size} masters`)

  const codes = new Map<string, number[]>(clients.map((ip) => [ip, []]))
  const request = async (app: typeof apps[number], ip: string): Promise<void> => {
    codes.get(ip)?.push((await app.inject({ url: `/query?sno=${order.sno}`, remoteAddress: ip })).statusCode)
  }
  // 15 requests per client on the first instance; its counts reach the cluster (every 100 ms).
  for (let i = 0; i < 15; i++) for (const ip of clients) await request(apps[0], ip)
  for (const ip of clients) t.ok(await eventually(async () => (await counted(ip)).total === 15), `${ip}: 15 counted in the cluster`)
  // The second instance: a client's first request there fetches the others' count.
  for (const ip of clients) await request(apps[1], ip)
  for (const ip of clients) t.ok(await eventually(async () => (await counted(ip)).processes === 2), `${ip}: the second instance has reported`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (let i = 0; i < 14; i++) for (const ip of clients) await request(apps[1], ip)
  for (const [ip, statuses] of codes) {
    const admitted = statuses.filter((c) => c === 200).length
    t.equal(statuses.length, 30)
    t.equal(admitted, 20, `${ip}: 20 of 30 admitted across both instances (the limit)`)
    t.same(statuses.slice(0, 20), Array(20).fill(200), `${ip}: the first 20 admitted, then 429`)
  }
})

t.test('the shared counter on the cluster: every instance sees the total', async (t) => {
  const config = testConfig('cluster_counter', { REDIS_CLUSTER_NODES: cluster.nodes })
  const counters: SharedCounter[] = []
  const name = `c${Date.now()}`
  for (let i = 0; i < 2; i++) {
    const redis = createRedis(config.redis, logger, 'counter-test')
    const guard = new RedisGuard(redis, logger)
    await guard.waitUntilReady(5000)
    const counter = new SharedCounter(guard, name, 60_000, 60_000)
    t.teardown(() => { counter.close(); redis.disconnect() })
    counters.push(counter)
  }
  const [a, b] = counters
  const now = Date.now()
  const ips = Array.from({ length: 40 }, (_, i) => `203.0.113.${i}`)
  // A report that fails (a command past its 100 ms on a busy machine, a master's connection still
  // opening, the guard's cool-down after three of those) is sent again at the next flush, as the
  // flush timer does in production: each step flushes until what it reports has reached Redis.
  const admin = createRedis({ ...config.redis, commandTimeoutMs: 5000 }, logger, 'counter-admin')
  t.teardown(() => admin.disconnect())
  await new RedisGuard(admin, logger).waitUntilReady(5000)
  const reported = async (ip: string): Promise<number> =>
    (await admin.hvals(`rl:${name}:${Math.floor(now / 60_000)}:${ip}`)).reduce((sum, v) => sum + Number(v), 0)
  const settled = async (counter: SharedCounter, check: () => Promise<boolean> | boolean): Promise<boolean> =>
    await eventually(async () => { await counter.flush(now); return await check() }, 20_000)
  for (const ip of ips) { for (let i = 0; i < 3; i++) a.hit(ip, now) }
  for (const ip of ips) b.hit(ip, now)
  t.ok(await settled(a, async () => (await Promise.all(ips.map(reported))).every((n) => n === 3)), 'a\'s counts reached every master')
  t.ok(await settled(b, () => ips.every((ip) => b.peek(ip, now).current === 4)), 'b sees 3 + 1 for each of 40 clients (spread over every master)')
  for (const ip of ips) a.hit(ip, now)
  t.ok(await settled(a, () => ips.every((ip) => a.peek(ip, now).current === 5)), 'a, at its next report, sees 4 + 1')
})

t.test('the report lease on the cluster: one of two racing runners, renewal, release', async (t) => {
  const config = testConfig('cluster_lease', { REDIS_CLUSTER_NODES: cluster.nodes })
  const clients = [createRedis(config.redis, logger, 'lease-a'), createRedis(config.redis, logger, 'lease-b')]
  for (const redis of clients) {
    t.teardown(() => redis.disconnect())
    await new RedisGuard(redis, logger).waitUntilReady(5000)
  }
  const [a, b] = clients
  const key = `reports:lock:cluster-${Date.now()}`
  const raced = await Promise.all([acquireLease(a, key, 600), acquireLease(b, key, 600)])
  const winners = raced.filter((lease) => lease !== null)
  t.equal(winners.length, 1, 'exactly one runner holds the slot')
  const lease = winners[0]
  if (lease === null || lease === undefined) return
  const loser = raced[0] === lease ? b : a
  t.equal(await a.get(key), lease.token, 'the key holds the winner\'s token')

  // Renewal: well past the first TTL the lease is still held (renewed every ttl/3) and confirmed.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await lease.assertHeld()
  t.equal(lease.lost, undefined, 'renewed, not lost')
  t.equal(await acquireLease(loser, key, 600), null, 'the other runner still cannot take it')
  const ttl = await a.pttl(key)
  t.ok(ttl > 0 && ttl <= 600, `the key keeps a TTL (${ttl} ms)`)

  await lease.release()
  t.equal(await a.exists(key), 0, 'released')
  const next = await acquireLease(loser, key, 600)
  t.ok(next !== null, 'the other runner takes it after the release')
  // A holder whose lease was taken over cannot release the new holder's lease.
  await lease.release()
  t.equal(await a.get(key), next?.token, 'a stale holder does not delete the new lease')
  await next?.release()

  // A lease whose key now holds another runner's token is found lost at its next check.
  const held = await acquireLease(a, `${key}:taken`, 5000)
  t.ok(held !== null)
  await b.set(`${key}:taken`, 'someone-else', 'PX', 5000)
  await t.rejects(held?.assertHeld() ?? Promise.resolve(), { code: 'LEASE_LOST' }, 'a renewal that finds another token marks the lease lost')
})

t.test('a queue consumer\'s counters reach /metrics through the cluster', async (t) => {
  const config = testConfig('cluster_ingest_metrics', { REDIS_CLUSTER_NODES: cluster.nodes })
  await freshDatabase(t, config)
  const app = await buildApp(config)
  t.teardown(async () => await app.close())
  await app.ready()
  const counters = new IngestCounters()
  counters.received = 10
  counters.stored = 8
  counters.deadLetter('EVENT_INVALID')
  // The hash on the set's master, in another slot: a fresh client's first command to a master
  // opens its connection, and a second one sent meanwhile was refused ("Connection is closed").
  const slotOf = (name: string): number => keySlot(`${config.redis.keyPrefix}${INGEST_METRICS_SET}${name}`)
  const setMaster = await cluster.ownerOf(slotOf(''))
  let processName = ''
  for (let i = 0; processName === '' && i < 1000; i++) {
    const name = `cluster-test-${i}`
    if (slotOf(`:${name}`) !== slotOf('') && await cluster.ownerOf(slotOf(`:${name}`)) === setMaster) processName = name
  }
  t.not(slotOf(''), slotOf(`:${processName}`), 'the set and the hash live in different slots, on one master')
  // A client whose connection to that master is still to be opened: the one it checks readiness
  // on is a random master, already open (one client in three), so a new client is made then.
  const setMasterConnection = (client: RedisClient): string | undefined =>
    (client as Cluster).nodes('master').find((node) => node.options.port === cluster.ports[setMaster])?.status
  const connected = async (): Promise<RedisClient> => {
    const client = createRedis(config.redis, logger, 'ingest-test')
    t.teardown(() => client.disconnect())
    await eventually(async () => client.status === 'ready', 10_000)
    return client
  }
  let redis = await connected()
  for (let tries = 1; setMasterConnection(redis) !== 'wait' && tries < 20; tries++) {
    redis.disconnect()
    redis = await connected()
  }
  t.equal(redis.status, 'ready', 'the consumer\'s client is connected')
  t.equal(setMasterConnection(redis), 'wait', 'but not yet to the set\'s master')
  await t.resolves(counters.publish(redis, processName), 'published without a cross-slot error')
  const intake = async (counter: string): Promise<number | undefined> => {
    const line = (await app.inject('/metrics')).body.split('\n').find((l) => l.startsWith('logistics_queue_intake_total{') && l.includes(`counter="${counter}"`))
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }
  t.ok(await eventually(async () => await intake('stored') === 8, 15_000), 'stored')
  t.equal(await intake('received'), 10, 'received')
  t.equal(await intake('dead_lettered_EVENT_INVALID'), 1, 'set aside, by reason')
})
