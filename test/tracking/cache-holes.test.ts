import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { Writer } from '../../src/writes/writer.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { PrivateRedis } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { eventually } from '../helpers/app.js'

/**
 * The ways a cached /query answer could outlive a write, each on a private redis-server: a
 * restart from a snapshot, Redis full under noeviction, a generation key that disappears, and a
 * writer that dies between its commit and its invalidation.
 */

async function stack (t: Test, name: string, redisArgs: string[] = []): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, server: PrivateRedis, direct: Redis, db: Awaited<ReturnType<typeof freshDatabase>>['db'], prefix: string }> {
  const server = await PrivateRedis.start(t, redisArgs)
  const config = testConfig(name, { REDIS_URL: server.url, CHANGE_RELAY_INTERVAL_MS: '50' })
  const { db } = await freshDatabase(t, config)
  const app = await buildApp(config)
  t.teardown(async () => await app.close())
  await app.ready()
  const direct = new Redis(server.url, { maxRetriesPerRequest: 1 })
  direct.on('error', () => {})
  t.teardown(() => direct.disconnect())
  return { app, server, direct, db, prefix: config.redis.keyPrefix }
}

let scan = 0
const nextScan = (): string => `scan-${++scan}`

t.test('Redis restarted from a snapshot taken before a write: the old answer never comes back', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lt-redis-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const { app, server, direct, db, prefix } = await stack(t, 'cache_holes_snapshot', ['--dir', dir, '--dbfilename', 'dump.rdb'])
  const o = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
  const bodyKey = `${prefix}track:v1:{${o.sno}}`
  await app.inject(`/query?sno=${o.sno}`)
  t.ok(await eventually(async () => await direct.exists(bodyKey) === 1), 'cached')
  await direct.save()

  const [written] = await app.writer.applyEvents([{ event_id: nextScan(), sno: o.sno, status: 'In Transit', location_id: 6, occurred_at: new Date('2026-11-20T05:00:00Z') }])
  t.equal(written.result, 'accepted')
  t.equal(await direct.exists(bodyKey), 0, 'invalidated')

  server.kill()
  await server.start()
  const restored = new Redis(server.url, { maxRetriesPerRequest: 1 })
  t.teardown(() => restored.disconnect())
  t.match(await restored.get(bodyKey), /"Created"/, 'the snapshot brought the old body back into Redis')

  let stale = 0
  let answers = 0
  const refilled = await eventually(async () => {
    const res = await app.inject(`/query?sno=${o.sno}`)
    answers += 1
    if (res.json().tracking_status !== 'In Transit') stale += 1
    return (await restored.get(bodyKey))?.includes('In Transit') === true
  }, 15_000)
  t.ok(refilled, 'the cache is filled again with the new answer')
  t.equal(stale, 0, `no stale answer among ${answers} after the restart`)
})

t.test('Redis full under noeviction: the write still invalidates, no stale answer', async (t) => {
  const { app, direct, db, prefix } = await stack(t, 'cache_holes_oom', ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'])
  const o = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
  const bodyKey = `${prefix}track:v1:{${o.sno}}`
  await app.inject(`/query?sno=${o.sno}`)
  t.ok(await eventually(async () => await direct.exists(bodyKey) === 1), 'cached')

  // Fill Redis until it refuses writes.
  const junk = 'x'.repeat(10_000)
  let full = false
  for (let i = 0; i < 10_000 && !full; i++) {
    try { await direct.set(`junk:${i}`, junk) } catch (err) { full = /OOM/.test((err as Error).message) }
  }
  t.ok(full, 'Redis refuses writes (OOM)')

  const [written] = await app.writer.applyEvents([{ event_id: nextScan(), sno: o.sno, status: 'In Transit', location_id: 6, occurred_at: new Date('2026-11-20T05:00:00Z') }])
  t.equal(written.result, 'accepted')
  let stale = 0
  for (let i = 0; i < 40; i++) {
    if ((await app.inject(`/query?sno=${o.sno}`)).json().tracking_status !== 'In Transit') stale += 1
  }
  t.equal(stale, 0, 'no stale answer in 40 lookups after the write')
  const left = await direct.get(bodyKey)
  t.ok(left === null || left.includes('In Transit'), 'no old body left (the DEL freed room for the new one, or nothing is cached)')
})

t.test('a generation key that disappears cannot let a read from before a write fill', async (t) => {
  const { app, direct, db, prefix } = await stack(t, 'cache_holes_generation')
  const o = await insertKnownOrder(db)
  const service = app.tracking as unknown as { cache: { read: (sno: number) => Promise<{ generation: string } | undefined>, store: (sno: number, generation: string, body: string) => Promise<boolean>, generationKey: (sno: number) => string } }
  const cache = service.cache
  // A slow reader takes the generation, then a write happens, then the generation key goes
  // (evicted, expired or flushed), and another reader takes a new one.
  const slow = await cache.read(o.sno)
  t.ok(slow?.generation, 'the reader holds a generation')
  await app.tracking.invalidate([o.sno])
  await direct.del(`${prefix}${cache.generationKey(o.sno)}`)
  t.equal(await cache.store(o.sno, slow?.generation ?? '', 'stale body'), false, 'refused with the generation gone')
  const other = await cache.read(o.sno)
  t.not(other?.generation, slow?.generation, 'a new generation never repeats an old one')
  t.equal(await cache.store(o.sno, slow?.generation ?? '', 'stale body'), false, 'refused with a new generation in place')
  t.equal(await direct.exists(`${prefix}track:v1:{${o.sno}}`), 0, 'nothing stale was stored')
})

t.test('a writer that dies between its commit and its invalidation: the relay replays the change', async (t) => {
  const { app, direct, db, prefix } = await stack(t, 'cache_holes_crash')
  const o = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
  const bodyKey = `${prefix}track:v1:{${o.sno}}`
  await app.inject(`/query?sno=${o.sno}`)
  t.ok(await eventually(async () => await direct.exists(bodyKey) === 1), 'cached')
  // Another process's writer whose invalidation never runs (as if killed right after COMMIT).
  const crashed = new Writer(db, { hubExists: async () => true })
  const committed = Date.now()
  await crashed.applyEvents([{ event_id: nextScan(), sno: o.sno, status: 'In Transit', location_id: 6, occurred_at: new Date('2026-11-20T05:00:00Z') }])
  t.ok(await eventually(async () => (await app.inject(`/query?sno=${o.sno}`)).json().tracking_status === 'In Transit', 10_000), 'the new status shows')
  t.comment(`stale for ${Date.now() - committed} ms after the commit (relay polling every 50 ms)`)
})
