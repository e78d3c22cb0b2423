import t from 'tap'
import { readFile } from 'node:fs/promises'
import { Cluster } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { keySlot, orderSlot } from '../../src/infra/redis-cluster.js'
import { findTrackingRowsMany } from '../../src/tracking/queries.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { trackingService } from '../helpers/tracking.js'
import { eventually } from '../helpers/app.js'
import { RedisCluster } from '../helpers/redis-cluster.js'

/**
 * The /query cache contract on a real 3-master Redis Cluster (started on free ports for this
 * file): lookups of many orders in one turn over every master, hits, misses, fills, a write to
 * many orders at once, the token race, and a master restarted from a snapshot taken before a write.
 */

const cluster = await RedisCluster.start(t)
const config = testConfig('cluster_cache', { REDIS_CLUSTER_NODES: cluster.nodes, CHANGE_RELAY_INTERVAL_MS: '50' })
const { db } = await freshDatabase(t, config)
const app = await buildApp(config)
t.teardown(async () => await app.close())
await app.ready()
const prefix = config.redis.keyPrefix
// A plain cluster client without the app's prefix, to look at what the app left in Redis.
const direct = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 1 } })
direct.on('error', () => {})
t.teardown(() => direct.disconnect())
const bodyKey = (sno: number): string => `${prefix}track:v1:{${sno}}`

let scan = 0
const nextScan = (): string => `cluster-scan-${++scan}`
const at = (minutes: number): Date => new Date(Date.UTC(2026, 10, 20, 1, minutes))
const HUBS = [1, 3, 4, 6, 7, 8, 9, 11, 13, 14, 15, 18, 19, 21, 23, 24]
/** The sno an answer is about (its `sno` is a string). */
const snoOf = (body: unknown): number => Number((JSON.parse(String(body)) as { sno: string }).sno)

t.test('the slot of a key is the one Redis Cluster computes', async (t) => {
  const keys = ['track:v1:{42}', `${prefix}gen:v2:{7}`, 'cache:boot:{0}', 'rl:all:29000000:10.0.0.1', 'a{}b', '{}', 'x{y', '{a}{b}', 'é{ü}']
  for (let sno = 1; sno < 200; sno += 7) keys.push(`${prefix}track:v1:masked:{${sno}}`)
  for (const key of keys) t.equal(keySlot(key), await cluster.admin(0).cluster('KEYSLOT', key), key)
  t.equal(orderSlot(42), keySlot('anything:{42}'))
})

t.test('lookups of many orders in one turn, over every master: misses, fills, then hits', async (t) => {
  const orders: Array<Awaited<ReturnType<typeof insertKnownOrder>>> = []
  for (let i = 0; i < 60; i++) orders.push(await insertKnownOrder(db, { events: [{ status: 'Created', locationId: HUBS[i % 16], at: at(i).toISOString() }] }))
  const masters = new Set(await Promise.all(orders.map(async (o) => await cluster.ownerOf(orderSlot(o.sno)))))
  t.equal(masters.size, 3, 'the orders live on all three masters')
  t.ok(new Set(orders.map((o) => orderSlot(o.sno))).size > 50, 'in many different slots')

  // The cache is in use once the boot markers of all masters have been checked.
  t.ok(await eventually(async () => {
    await app.tracking.lookup(999_999_990)
    return await direct.exists(bodyKey(999_999_990)) === 1
  }, 10_000), 'the cache is trusted')
  const before = { ...app.tracking.stats }
  const first = await Promise.all(orders.map(async (o) => await app.tracking.lookup(o.sno)))
  t.same(first.map(snoOf), orders.map((o) => o.sno), 'every order answered with its own answer')
  t.equal(app.tracking.stats.database - before.database, 60, 'all misses at first')
  t.ok(await eventually(async () => {
    for (const o of orders) if (await direct.exists(bodyKey(o.sno)) !== 1) return false
    return true
  }), 'every answer was stored in the cluster, on its own master')

  const again = await Promise.all(orders.map(async (o) => await app.tracking.lookup(o.sno)))
  t.same(again.map(String), first.map(String), 'the same answers')
  t.equal(app.tracking.stats.redis - before.redis, 60, 'all Redis hits the second time')
  t.equal(app.tracking.stats.near, before.near, 'no near cache on a cluster')
  t.equal(app.tracking.stats.database - before.database, 60, 'no more statements')

  const unknown = await Promise.all([999_999_991, 999_999_992, 999_999_993].map(async (sno) => await app.tracking.lookup(sno)))
  t.same(unknown, [null, null, null], 'unknown snos are misses')
  t.ok(await eventually(async () => { await app.tracking.lookup(999_999_992); return await direct.get(bodyKey(999_999_992)) === '-' }), 'and remembered as not found')

  // A write to every order at once: one call, all invalidated, no stale answer afterwards.
  const written = await app.writer.applyEvents(orders.map((o, i) => ({ event_id: nextScan(), sno: o.sno, status: 'In Transit' as const, location_id: 6, occurred_at: at(100 + i) })))
  t.ok(written.every((w) => w.result === 'accepted'), 'the write was accepted for all 60 orders')
  for (const o of orders) t.equal(await direct.exists(bodyKey(o.sno), `${prefix}gen:v2:{${o.sno}}`), 0, `order ${o.sno} invalidated`)
  const after = await Promise.all(orders.map(async (o) => await app.tracking.lookup(o.sno)))
  t.equal(after.filter((body) => !String(body).includes('"In Transit"')).length, 0, 'no stale answer after the write')
  t.ok(await eventually(async () => {
    await app.tracking.lookup(orders[59].sno)
    return (await direct.get(bodyKey(orders[59].sno)))?.includes('"In Transit"') === true
  }, 10_000), 'the new answers are cached again')
})

t.test('the token race on a cluster: a read from before a write never lands', async (t) => {
  const { service, cache, guard, queries } = trackingService(t, config, db)
  t.ok(guard.redis.isCluster, 'a cluster client')
  await guard.waitUntilReady(5000)
  const order = await insertKnownOrder(db)
  const seen = await cache.read(order.sno)
  t.equal(seen?.body, null, 'a miss')
  t.ok((seen?.generation ?? '') !== '', 'with a generation token')
  const oldRows = (await findTrackingRowsMany(db, [order.sno])).get(order.sno)
  await db.updateTable('recipients').set({ name: '新名字' }).where('id', '=', order.recipientId).execute()
  await service.invalidate([order.sno])
  t.equal(await cache.store(order.sno, seen?.generation ?? '', JSON.stringify(oldRows)), false, 'the old body is refused')
  t.equal(await direct.exists(bodyKey(order.sno)), 0)

  const iterations = 150
  let stale = 0
  let refused = 0
  const originalStore = cache.store.bind(cache)
  cache.store = async (...args) => {
    const ok = await originalStore(...args)
    if (!ok) refused += 1
    return ok
  }
  queries.resultDelayMs = 3
  t.teardown(() => { queries.resultDelayMs = 0; cache.store = originalStore })
  const jitter = async (): Promise<void> => await new Promise((resolve) => setTimeout(resolve, Math.random() * 2))
  for (let i = 0; i < iterations; i++) {
    const next = `版本${i}`
    await Promise.all([
      ...Array.from({ length: 4 }, async () => { await jitter(); await service.lookup(order.sno) }),
      (async () => {
        await jitter()
        await db.updateTable('recipients').set({ name: next }).where('id', '=', order.recipientId).execute()
        await service.invalidate([order.sno])
      })()
    ])
    // Fills are sent at the end of the turn their lookups resolved in; a GET of the same slot
    // on the same connection (auto-pipelined after them) returns after they ran.
    await new Promise((resolve) => setImmediate(resolve))
    await guard.redis.get(`track:v1:{${order.sno}}`)
    const cached = await direct.get(bodyKey(order.sno))
    if (cached !== null && !cached.includes(`"${next}"`)) stale += 1
  }
  t.equal(stale, 0, `stale bodies left after ${iterations} races`)
  t.ok(refused > 0, `the race did happen: ${refused} fills were refused`)
})

t.test('a master restarted from a snapshot taken before a write: the old answer never comes back', async (t) => {
  const order = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
  const master = await cluster.ownerOf(orderSlot(order.sno))
  const node = cluster.admin(master)
  t.match(String(await app.tracking.lookup(order.sno)), /"Created"/)
  t.ok(await eventually(async () => { await app.tracking.lookup(order.sno); return await node.exists(bodyKey(order.sno)) === 1 }), 'cached on its master')
  const oldRunId = await cluster.runId(master)
  await cluster.save(master)

  const [written] = await app.writer.applyEvents([{ event_id: nextScan(), sno: order.sno, status: 'In Transit', location_id: 6, occurred_at: new Date('2026-11-20T05:00:00Z') }])
  t.equal(written.result, 'accepted')
  t.equal(await node.exists(bodyKey(order.sno)), 0, 'invalidated')

  // The snapshot (written uncompressed) holds the old body, which the restart loads back.
  const snapshot = await readFile(cluster.snapshotFile(master), 'latin1')
  t.ok(snapshot.includes(bodyKey(order.sno)) && snapshot.includes('"Created"'), 'the snapshot holds the old body')
  await cluster.restart(master)
  t.not(await cluster.runId(master), oldRunId, 'the master runs anew')

  let stale = 0
  let answers = 0
  const refilled = await eventually(async () => {
    const body = String(await app.tracking.lookup(order.sno))
    answers += 1
    if (!body.includes('"In Transit"')) stale += 1
    return (await node.get(bodyKey(order.sno)))?.includes('"In Transit"') === true
  }, 15_000)
  t.ok(refilled, 'the cache is used again, with the new answer')
  const [marker] = await node.keys(`${prefix}cache:boot:*`)
  t.equal(await node.get(marker), await cluster.runId(master), 'the master\'s boot marker holds its new run id')
  t.equal(stale, 0, `no stale answer among ${answers} after the restart`)
})

t.test('a flushed master is noticed: its marker is put back and the cache is trusted again', async (t) => {
  const order = await insertKnownOrder(db)
  const master = await cluster.ownerOf(orderSlot(order.sno))
  t.ok(await eventually(async () => { await app.tracking.lookup(order.sno); return await direct.exists(bodyKey(order.sno)) === 1 }))
  const markers = async (): Promise<string[]> => await cluster.admin(master).keys(`${prefix}cache:boot:*`)
  t.equal((await markers()).length, 1, 'one boot marker on the master')
  await cluster.admin(master).flushall()
  t.ok(await eventually(async () => (await markers()).length === 1, 5000), 'the marker is put back')
  t.equal(await cluster.admin(master).get((await markers())[0]), await cluster.runId(master), 'with the master\'s run id')
  t.equal(snoOf(await app.tracking.lookup(order.sno)), order.sno)
  t.ok(await eventually(async () => { await app.tracking.lookup(order.sno); return await direct.exists(bodyKey(order.sno)) === 1 }), 'cached again')
})
