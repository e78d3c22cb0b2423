import t from 'tap'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { trackingService } from '../helpers/tracking.js'
import { eventually } from '../helpers/app.js'
import { findTrackingRowsMany } from '../../src/tracking/queries.js'

const config = testConfig('tracking_cache_race')
const { db } = await freshDatabase(t, config)
const redis = await clearKeys(t, config)
const { service, cache, guard, queries } = trackingService(t, config, db)
const keyOf = (sno: number): string => `${config.redis.keyPrefix}${cache.bodyKey(sno)}`

t.test('a fill that read before a write is refused (deterministic interleaving)', async (t) => {
  const order = await insertKnownOrder(db)
  const seen = await cache.read(order.sno)
  t.equal(seen?.body, null, 'a miss')
  const oldRows = (await findTrackingRowsMany(db, [order.sno])).get(order.sno)
  // The write commits and invalidates between the reader's read and its fill.
  await db.updateTable('recipients').set({ name: '新名字' }).where('id', '=', order.recipientId).execute()
  await service.invalidate([order.sno])
  const stored = await cache.store(order.sno, seen?.generation ?? '', JSON.stringify(oldRows))
  t.equal(stored, false, 'the old body is not put back')
  t.equal(await redis.exists(keyOf(order.sno)), 0)
  const body = await service.lookup(order.sno)
  t.match(body, /新名字/, 'the next reader gets the new data')
  t.ok(await eventually(async () => (await redis.get(keyOf(order.sno)))?.includes('新名字') === true), 'and caches it')
})

t.test('fills of one turn go together, each judged on its own generation', async (t) => {
  const [a, b, c] = [await insertKnownOrder(db), await insertKnownOrder(db), await insertKnownOrder(db)]
  const seen = await Promise.all([a, b, c].map(async (o) => await cache.read(o.sno)))
  // b is written after its read; c's generation key is broken (a wrong type makes GET fail in Redis).
  await service.invalidate([b.sno])
  await redis.del(`${config.redis.keyPrefix}${cache.generationKey(c.sno)}`)
  await redis.rpush(`${config.redis.keyPrefix}${cache.generationKey(c.sno)}`, 'not-a-token')
  t.teardown(async () => { await redis.del(`${config.redis.keyPrefix}${cache.generationKey(c.sno)}`) })
  const stored = await Promise.all([a, b, c].map(async (o, i) => await cache.store(o.sno, seen[i]?.generation ?? '', `body-${o.sno}`)))
  t.same(stored, [true, false, false], 'a filled; b refused (written since); c refused (unreadable generation)')
  t.equal(await redis.get(keyOf(a.sno)), `body-${a.sno}`, 'the broken key did not cost the others their fill')
  t.equal(await redis.exists(keyOf(b.sno), keyOf(c.sno)), 0)
})

t.test('readers racing writers never leave a stale body behind', async (t) => {
  const order = await insertKnownOrder(db)
  const iterations = 400
  let stale = 0
  let refused = 0
  const originalStore = cache.store.bind(cache)
  cache.store = async (...args) => {
    const ok = await originalStore(...args)
    if (!ok) refused += 1
    return ok
  }
  // Readers sometimes take a few ms between their SELECT and their fill, as under load.
  queries.resultDelayMs = 3
  t.teardown(() => { queries.resultDelayMs = 0 })
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
    // Fills are queued for the end of the turn in which the lookups resolved: let that turn end,
    // then a PING on the same connection returns after them. On a busy machine a PING can outlast
    // the client's short command timeout: the next one still follows the fills.
    await new Promise((resolve) => setImmediate(resolve))
    for (let attempt = 1; ; attempt++) {
      try {
        await guard.redis.ping()
        break
      } catch (err) {
        if (attempt >= 20) throw err
      }
    }
    const cached = await redis.get(keyOf(order.sno))
    if (cached !== null && !cached.includes(`"${next}"`)) stale += 1
  }
  cache.store = originalStore
  t.equal(stale, 0, `stale bodies left in the cache after ${iterations} races`)
  t.ok(refused > 0, `the race did happen: ${refused} fills were refused`)
  t.comment(`${iterations} rounds of 4 readers against 1 writer: ${refused} stale fills refused, ${stale} stale reads`)
})
