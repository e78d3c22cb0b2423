import t from 'tap'
import { sql } from 'kysely'
import { buildTestApp, eventually } from '../helpers/app.js'
import { ERROR_EXAMPLE, QUERY_EXAMPLE, shapeDifferences } from '../helpers/contract.js'
import { insertKnownOrder } from '../helpers/orders.js'

const { app, config, database, redis } = await buildTestApp(t, 'tracking_query')
const prefix = config.redis.keyPrefix
const order = await insertKnownOrder(database.db)

t.test('the answer has the documented shape and the order\'s data', async (t) => {
  const res = await app.inject(`/query?sno=${order.sno}`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json()
  t.same(shapeDifferences(body, QUERY_EXAMPLE), [], 'same keys and JSON types as the contract, field by field')
  t.equal(body.sno, String(order.sno), 'sno is a string')
  t.equal(body.tracking_status, 'Delivered', 'status of the newest event')
  t.equal(body.estimated_delivery, '2023-12-02', 'the order\'s estimated delivery')
  t.same(body.current_location, { location_id: 3, title: '桃園物流中心', address: '桃園市中壢區中央西路三段150號' })
  t.same(body.recipient, { id: order.recipientId, name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '096678901' }, 'Chinese text round-trips')
  t.same(body.details.map((d: { status: string }) => d.status),
    ['Created', 'Package Received', 'In Transit', 'Out for Delivery', 'Delivery Attempted', 'Delivered'], 'oldest first, whatever the insert order')
  t.same(body.details.map((d: { id: number }) => d.id), order.eventIds, 'event ids')
  t.same(body.details[0], {
    id: order.eventIds[0],
    date: '2023-11-30',
    time: '2023-11-30T09:15:00.000+08:00',
    status: 'Created',
    location_id: 1,
    location_title: '花蓮物流中心'
  }, 'date and time in the hub\'s zone')
  t.equal(body.details[4].date, '2023-12-02', 'an event at 00:10 UTC is already the next day in Taipei')
})

t.test('events at the same instant are ordered by id', async (t) => {
  const same = '2024-01-01T00:00:00.000Z'
  const o = await insertKnownOrder(database.db, {
    events: [
      { status: 'Created', locationId: 1, at: same },
      { status: 'Package Received', locationId: 1, at: same }
    ]
  })
  const body = (await app.inject(`/query?sno=${o.sno}`)).json()
  const ids = body.details.map((d: { id: number }) => d.id)
  t.same(ids, [...ids].sort((a: number, b: number) => a - b))
})

t.test('bad sno values are 400 with a stable code, unknown ones 404', async (t) => {
  const cases: Array<[string, number, string]> = [
    ['/query', 400, 'SNO_REQUIRED'],
    ['/query?sno=', 400, 'SNO_REQUIRED'],
    ['/query?sno=abc', 400, 'SNO_INVALID'],
    ['/query?sno=-3', 400, 'SNO_INVALID'],
    ['/query?sno=0', 400, 'SNO_INVALID'],
    ['/query?sno=000', 400, 'SNO_INVALID'],
    ['/query?sno=1.5', 400, 'SNO_INVALID'],
    ['/query?sno=1e3', 400, 'SNO_INVALID'],
    ['/query?sno=%20' + order.sno, 400, 'SNO_INVALID'],
    ['/query?sno=1&sno=2', 400, 'SNO_INVALID'],
    ['/query?sno[]=1', 400, 'SNO_REQUIRED'],
    ['/query?sno=9007199254740992', 400, 'SNO_OUT_OF_RANGE'],
    ['/query?sno=99999999999999999999999999', 400, 'SNO_OUT_OF_RANGE'],
    ['/query?sno=9007199254740991', 404, 'TRACKING_NOT_FOUND'],
    ['/query?sno=987654', 404, 'TRACKING_NOT_FOUND']
  ]
  for (const [url, status, code] of cases) {
    const res = await app.inject(url)
    t.equal(res.statusCode, status, `${url} → ${status}`)
    const body = res.json()
    t.same(shapeDifferences(body, ERROR_EXAMPLE), [], `${url}: Fastify's error shape plus code`)
    t.equal(body.code, code, `${url} → ${code}`)
    t.equal(body.statusCode, status)
    t.notMatch(res.body, /at .*\.(ts|js):\d+/, 'no stack trace')
  }
  const padded = await app.inject(`/query?sno=000${order.sno}`)
  t.equal(padded.json().sno, String(order.sno), 'leading zeros are ignored')
})

t.test('a miss fills the cache for CACHE_TTL_SECONDS; a hit sends the same bytes', async (t) => {
  const o = await insertKnownOrder(database.db)
  const key = `${prefix}track:v1:{${o.sno}}`
  t.equal(await redis.exists(key), 0, 'cold')
  const miss = await app.inject(`/query?sno=${o.sno}`)
  t.ok(await eventually(async () => await redis.exists(key) === 1, 30_000), 'filled after the miss')
  const ttl = await redis.ttl(key)
  t.ok(ttl > config.cache.ttlSeconds - 5 && ttl <= config.cache.ttlSeconds, `TTL ${ttl} ≈ ${config.cache.ttlSeconds}`)
  t.equal(await redis.get(key), miss.body, 'the stored value is the serialized body')

  // A hit is the stored string, byte for byte, even when it differs from what MySQL would give.
  const planted = miss.body.replace('"李大同"', '"王小明"')
  await redis.set(key, planted, 'EX', 60)
  const hit = await app.inject(`/query?sno=${o.sno}`)
  t.equal(hit.body, planted, 'sent as stored')
  t.equal(hit.headers['content-length'], String(Buffer.byteLength(planted)))
  t.match(hit.headers['content-type'], /^application\/json/)
})

t.test('unknown orders are remembered briefly, and a new order replaces that at once', async (t) => {
  const next = order.sno + 1000
  const key = `${prefix}track:v1:{${next}}`
  t.equal((await app.inject(`/query?sno=${next}`)).statusCode, 404)
  t.ok(await eventually(async () => await redis.exists(key) === 1, 30_000), '404 cached')
  const ttl = await redis.ttl(key)
  t.ok(ttl > 0 && ttl <= config.cache.notFoundTtlSeconds, `short TTL (${ttl} s)`)
  t.equal((await app.inject(`/query?sno=${next}`)).statusCode, 404, 'served from the cache')

  // Orders up to `next` come into existence through /fake, which invalidates after commit.
  await sql`ALTER TABLE orders AUTO_INCREMENT = ${sql.raw(String(next))}`.execute(database.db)
  const created = (await app.inject('/fake?num=1')).json()
  t.equal(created.data[0].sno, next, 'the new order got the cached sno')
  const res = await app.inject(`/query?sno=${next}`)
  t.equal(res.statusCode, 200, 'the cached 404 did not survive the write')
})

t.test('a write invalidates the cached answer after commit', async (t) => {
  const o = await insertKnownOrder(database.db)
  const first = (await app.inject(`/query?sno=${o.sno}`)).json()
  t.equal(first.recipient.name, '李大同')
  const key = `${prefix}track:v1:{${o.sno}}`
  t.ok(await eventually(async () => await redis.exists(key) === 1, 30_000))

  await database.db.updateTable('recipients').set({ name: '陳美麗' }).where('id', '=', o.recipientId).execute()
  t.equal((await app.inject(`/query?sno=${o.sno}`)).json().recipient.name, '李大同', 'cached until invalidated')
  const genBefore = await redis.get(`${prefix}gen:v2:{${o.sno}}`)
  t.ok(genBefore, 'the reader holds a generation token')
  await app.tracking.invalidate([o.sno])
  t.equal(await redis.exists(key), 0, 'body dropped')
  t.not(await redis.get(`${prefix}gen:v2:{${o.sno}}`), genBefore, 'generation dropped')
  t.equal((await app.inject(`/query?sno=${o.sno}`)).json().recipient.name, '陳美麗', 'fresh after invalidation')
})
