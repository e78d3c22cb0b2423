import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { MAX_RENEWALS, NearCache } from '../../src/tracking/near-cache.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, PrivateRedis } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { eventually } from '../helpers/app.js'

/**
 * Two API instances on one Redis, as two PM2 cluster workers: A writes, B has the order in its
 * in-process near cache. Coherence comes from Redis's invalidation messages; the time they
 * take to arrive is measured and printed, the outcome (never a stale answer after it) asserted.
 */
const server = await PrivateRedis.start(t)
const config = testConfig('tracking_near_cache', { REDIS_URL: server.url, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' })
const { db } = await freshDatabase(t, config)
await clearKeys(t, config)
const a = await buildApp(config)
const b = await buildApp(config)
t.teardown(async () => { await a.close(); await b.close() })
await Promise.all([a.ready(), b.ready()])

const nameOn = async (app: typeof a, sno: number): Promise<string> => (await app.inject(`/query?sno=${sno}`)).json().recipient.name
const rename = async (recipientId: number, name: string): Promise<void> => {
  await db.updateTable('recipients').set({ name }).where('id', '=', recipientId).execute()
}

t.test('a write through one worker empties the copy in the other', async (t) => {
  const order = await insertKnownOrder(db)
  t.ok(await eventually(async () => {
    await nameOn(b, order.sno)
    return b.tracking.nearSize() > 0
  }), 'B keeps the answer in process')
  await rename(order.recipientId, '新名字')
  t.equal(await nameOn(b, order.sno), '李大同', 'until a write is announced, B answers from its copy')

  await a.tracking.invalidate([order.sno])
  const announced = performance.now()
  t.ok(await eventually(async () => await nameOn(b, order.sno) === '新名字', 2000), 'B answers with the new data')
  t.comment(`B saw the write ${(performance.now() - announced).toFixed(2)} ms after A's invalidation returned`)
})

t.test('readers on one worker racing a writer on the other: no stale answer once the invalidation is delivered', async (t) => {
  const order = await insertKnownOrder(db)
  let stale = 0
  let worstMs = 0
  for (let i = 0; i < 200; i++) {
    const next = `版本${i}`
    await Promise.all([
      ...Array.from({ length: 3 }, async () => await nameOn(b, order.sno)),
      (async () => {
        await rename(order.recipientId, next)
        await a.tracking.invalidate([order.sno])
      })()
    ])
    const started = performance.now()
    const fresh = await eventually(async () => await nameOn(b, order.sno) === next, 1000)
    worstMs = Math.max(worstMs, performance.now() - started)
    if (!fresh) stale += 1
  }
  t.equal(stale, 0, 'every round ended with B answering the newest data')
  t.comment(`200 rounds: the newest data reached B at worst ${worstMs.toFixed(1)} ms after the write's invalidation`)
})

t.test('if the invalidation channel goes quiet, the near cache switches itself off', async (t) => {
  const order = await insertKnownOrder(db)
  await nameOn(b, order.sno)
  t.ok(await eventually(async () => {
    await nameOn(b, order.sno)
    return b.tracking.nearSize() > 0
  }))
  server.freeze() // no invalidation can be delivered now; writers cannot reach Redis either
  t.teardown(() => server.thaw())
  await rename(order.recipientId, '凍結中')
  await a.tracking.invalidate([order.sno]) // deferred: Redis does not answer
  t.ok(await eventually(async () => await nameOn(b, order.sno) === '凍結中', 5000), 'B stops using its copy and reads MySQL')
  server.thaw()
  t.ok(await eventually(async () => {
    await nameOn(b, order.sno)
    return b.tracking.nearActive()
  }, 10_000), 'and turns it back on once Redis answers')
})

t.test('tracking that cannot start is tried again until it does, not left off for good', async (t) => {
  // A user that may do everything but turn tracking on: the first start fails as a slow reply would.
  const admin = new Redis(server.url)
  t.teardown(async () => { await admin.acl('DELUSER', 'near-cache-test'); admin.disconnect() })
  await admin.acl('SETUSER', 'near-cache-test', 'on', '>near-cache-secret', '~*', '&*', '+@all', '-client|tracking')
  const warnings: string[] = []
  const logger = { info () {}, debug () {}, error () {}, warn (_o: unknown, message: string) { warnings.push(message) } }
  const near = new NearCache({ url: `redis://near-cache-test:near-cache-secret@127.0.0.1:${server.port}/0`, prefix: 'near-test:', maxEntries: 10, ttlMs: 60_000, heartbeatMs: 50 }, logger as never)
  t.teardown(async () => { await near.close() })
  t.ok(await eventually(async () => warnings.length > 0, 10_000), 'the failure is logged')
  t.notOk(near.active, 'the copy is off meanwhile')
  t.equal(near.begin(1), -1, 'and nothing read now is kept')
  await admin.acl('SETUSER', 'near-cache-test', '+client|tracking')
  t.ok(await eventually(async () => near.active, 10_000), 'it comes on once tracking can start')
  t.equal(warnings.length, 1, 'the failure is logged once, not at every retry')
  t.ok((await admin.client('LIST') as string).split('\n').some((line) => line.includes('name=near-cache') && /flags=\S*t/.test(line)), 'Redis tracks the new connection')
})

const quiet = { info () {}, warn () {}, debug () {}, error () {} } as never
/** A near cache of its own (its key prefix) with tracking on, closed after the test. */
async function trackingNear (t: Test, prefix: string, maxEntries: number): Promise<NearCache> {
  const near = new NearCache({ url: server.url, prefix, maxEntries, ttlMs: 60_000, heartbeatMs: 1000 }, quiet)
  t.teardown(async () => { await near.close() })
  t.ok(await eventually(async () => near.active, 10_000), 'tracking is on')
  return near
}
/** Holds Date.now still: `at(ms)` sets it to that long after now; put back after the test. */
function heldClock (t: Test): (ms: number) => void {
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  const start = realNow()
  const at = (ms: number): void => { Date.now = () => start + ms }
  at(0)
  return at
}

t.test('copies made together do not all expire together', async (t) => {
  const near = await trackingNear(t, 'near-spread:', 1000)
  const at = heldClock(t)
  for (let sno = 1; sno <= 200; sno++) near.offer(sno, near.begin(sno), `{"sno":"${sno}"}`)
  const held = (): number => Array.from({ length: 200 }, (_, i) => near.get(i + 1)).filter((body) => body !== undefined).length
  at(47_000)
  t.equal(held(), 200, 'none goes before 80 % of the TTL')
  at(54_000)
  const midway = held()
  t.ok(midway > 0 && midway < 200, `at 90 % of the TTL some are gone and some are kept (${midway} of 200 kept)`)
  at(60_001)
  t.equal(held(), 0, 'all are gone after the TTL')
})

t.test('a full copy forgets its oldest answers first, never one being read', async (t) => {
  const near = new NearCache({ url: server.url, prefix: 'near-evict:', maxEntries: 10, ttlMs: 60_000, heartbeatMs: 1000 }, { info () {}, warn () {}, debug () {}, error () {} } as never)
  t.teardown(async () => { await near.close() })
  t.ok(await eventually(async () => near.active, 10_000), 'tracking is on')
  const reading = near.begin(1) // a read of sno 1 under way all along
  for (let sno = 2; sno <= 500; sno++) {
    near.offer(sno, near.begin(sno), `{"sno":"${sno}"}`)
    if (near.size > 11) t.fail(`${near.size} entries after sno ${sno}`)
  }
  t.equal(near.size, 10, 'at most maxEntries, counting the one being read')
  const held = Array.from({ length: 500 }, (_, i) => i + 1).filter((sno) => near.get(sno) !== undefined)
  t.same(held, Array.from({ length: 9 }, (_, i) => 492 + i), 'the newest nine are held')
  near.offer(1, reading, '{"sno":"1"}')
  t.ok(near.get(1) !== undefined, 'the read under way kept its entry and could fill it')
})

t.test('a copy read in the last quarter of its life is renewed while it is served', async (t) => {
  const near = await trackingNear(t, 'near-renew:', 100)
  const at = heldClock(t)
  const realRandom = Math.random
  t.teardown(() => { Math.random = realRandom })
  Math.random = () => 0 // each copy lives its whole TTL (no spread), so its last quarter is 45-60 s
  // The rereads asked for, each answered when the test says (as Redis would answer the tracking service).
  const asked: Array<{ sno: number, answer: (body: string | null) => void }> = []
  near.reread = async (sno) => await new Promise((resolve) => asked.push({ sno, answer: (body) => { resolve({ body }) } }))
  for (const sno of [1, 2, 3]) near.offer(sno, near.begin(sno), `{"v":"${sno}-old"}`)

  at(44_900)
  t.equal(String(near.get(1)), '{"v":"1-old"}')
  t.equal(asked.length, 0, 'not before the last quarter')

  at(45_100)
  for (const sno of [1, 2, 3]) t.equal(String(near.get(sno)), `{"v":"${sno}-old"}`, `copy ${sno} is served while it is renewed`)
  near.get(1)
  t.same(asked.map((a) => a.sno), [1, 2, 3], 'one renewal a copy at a time, however often it is read')
  t.equal(near.renewing, 3)

  // 1: Redis has a newer answer; 2: an invalidation comes in while it is read; 3: Redis has nothing.
  near.invalidate(2)
  at(45_200)
  asked[0].answer('{"v":"1-new"}')
  asked[1].answer('{"v":"2-stale"}')
  asked[2].answer(null)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(near.renewing, 0, 'the renewals are over')
  t.equal(String(near.get(1)), '{"v":"1-new"}', 'the renewed copy replaces the old one at once')
  t.equal(near.get(2), undefined, 'a renewal that raced an invalidation is not kept')
  t.equal(String(near.get(3)), '{"v":"3-old"}', 'a copy Redis no longer holds is served until it expires')
  t.equal(asked.length, 3, 'and is not asked for again')

  at(60_001)
  t.equal(String(near.get(1)), '{"v":"1-new"}', 'the renewed copy outlives the old one')
  t.equal(near.get(3), undefined, 'the one not renewed expires as before')
  at(45_200 + 45_100)
  near.get(1)
  t.same(asked.map((a) => a.sno), [1, 2, 3, 1], 'and the renewed copy is renewed in its own last quarter')
})

t.test('a renewal overtaken by an invalidation and a new read leaves the new copy to be renewed', async (t) => {
  const near = await trackingNear(t, 'near-renew-race:', 10)
  const at = heldClock(t)
  const realRandom = Math.random
  t.teardown(() => { Math.random = realRandom })
  Math.random = () => 0
  const asked: Array<{ sno: number, answer: (body: string | null) => void }> = []
  near.reread = async (sno) => await new Promise((resolve) => asked.push({ sno, answer: (body) => { resolve({ body }) } }))
  near.offer(1, near.begin(1), '{"v":"1"}')
  at(45_100)
  near.get(1)
  near.invalidate(1) // a write; then a request reads the new answer before the renewal's reply is in
  near.offer(1, near.begin(1), '{"v":"1-written"}')
  asked[0].answer('{"v":"1-before-the-write"}')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(String(near.get(1)), '{"v":"1-written"}', 'the renewal read before the write is not kept')
  at(45_100 + 45_100)
  near.get(1)
  t.same(asked.map((a) => a.sno), [1, 1], 'the copy made after the write is renewed in its own last quarter')
})

t.test('a renewed copy goes to the back of the eviction order', async (t) => {
  const near = await trackingNear(t, 'near-renew-evict:', 3)
  const at = heldClock(t)
  near.reread = async (sno) => ({ body: `{"v":"${sno}-renewed"}` })
  for (const sno of [1, 2, 3]) near.offer(sno, near.begin(sno), `{"v":"${sno}"}`)
  at(47_000) // in every copy's last quarter, none expired
  near.get(1)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(String(near.get(1)), '{"v":"1-renewed"}')
  near.offer(4, near.begin(4), '{"v":"4"}') // a fourth answer in a copy of three: the oldest goes
  t.equal(String(near.get(1)), '{"v":"1-renewed"}', 'the renewed copy is kept')
  t.equal(near.get(2), undefined, 'the oldest one not renewed is evicted')
})

t.test('copies that come due together are renewed a bounded number at a time', async (t) => {
  const near = await trackingNear(t, 'near-renew-burst:', 1000)
  const at = heldClock(t)
  const pending: Array<() => void> = []
  near.reread = async (sno) => await new Promise((resolve) => pending.push(() => { resolve({ body: `{"v":"${sno}-new"}` }) }))
  for (let sno = 1; sno <= 200; sno++) near.offer(sno, near.begin(sno), `{"v":"${sno}-old"}`)
  at(47_000) // every copy is in its last quarter (it lives 48-60 s, the quarter from 36-45 s), none has expired
  const readAll = (): number => Array.from({ length: 200 }, (_, i) => near.get(i + 1)).filter((body) => body !== undefined).length
  t.equal(readAll(), 200, 'every copy is served')
  t.equal(pending.length, MAX_RENEWALS, `${MAX_RENEWALS} renewals asked for, not 200`)
  for (const answer of pending.splice(0)) answer()
  await new Promise((resolve) => setImmediate(resolve))
  readAll()
  t.equal(pending.length, MAX_RENEWALS, 'the next reads ask for the next ones')
  t.equal(Array.from({ length: 200 }, (_, i) => String(near.get(i + 1))).filter((body) => body.endsWith('-new"}')).length, MAX_RENEWALS, 'and the first are renewed')
})

t.test('an answer in steady demand keeps being served from the process, renewed from Redis, never from MySQL again', async (t) => {
  // A one-second copy, so that a few seconds of reading cross several of its ends.
  const short = testConfig('tracking_near_cache', { REDIS_URL: server.url, NEAR_CACHE_TTL_SECONDS: '1', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' })
  const app = await buildApp(short)
  t.teardown(async () => { await app.close() })
  await app.ready()
  t.ok(await eventually(async () => app.tracking.nearActive(), 10_000), 'the near cache is on')
  const order = await insertKnownOrder(db)
  const before = { ...app.tracking.stats }
  let failed = 0
  t.ok(await eventually(async () => {
    if ((await app.inject(`/query?sno=${order.sno}`)).statusCode !== 200) failed++
    return app.tracking.renewals.renewed >= 3
  }, 60_000), 'the copy was renewed three times')
  t.equal(failed, 0, 'every request was answered')
  t.equal(app.tracking.stats.database - before.database, 1, 'MySQL was read once, for the first request')
  t.ok(app.tracking.renewals.asked >= app.tracking.renewals.renewed, `renewals asked ${app.tracking.renewals.asked}, renewed ${app.tracking.renewals.renewed}`)
  t.match((await app.inject('/metrics')).body, /logistics_query_near_renewals_total\{outcome="renewed"[^}]*\} [1-9]/, 'the renewals are in /metrics')
})
