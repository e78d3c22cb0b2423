import t from 'tap'
import { sql } from 'kysely'
import { buildTestApp, eventually } from '../helpers/app.js'
import { ERROR_EXAMPLE, QUERY_EXAMPLE, shapeDifferences } from '../helpers/contract.js'
import type { LightMyRequestResponse as Response } from 'fastify'
import { addDays, dateInZone } from '../../src/hubs/local-time.js'

const { app, config, database } = await buildTestApp(t, 'intake_orders')
const db = database.db

const body = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  recipient: { name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '0966-789-012' },
  sender_location_id: 1,
  receiver_location_id: 3,
  ...overrides
})
const post = async (payload: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  await app.inject({ method: 'POST', url: '/orders', payload: payload as Record<string, unknown>, headers })
const orderCount = async (): Promise<number> => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders`.execute(db)).rows[0].n)

t.test('201: the /query body with sno as a number, the reference, a Location; /query has it at once', async (t) => {
  // A not-found answer cached before the order exists must not hide it afterwards.
  const next = Number((await sql<{ n: number | null }>`SELECT MAX(sno) AS n FROM orders`.execute(db)).rows[0].n ?? 0) + 1
  t.equal((await app.inject(`/query?sno=${next}`)).statusCode, 404)

  const res = await post(body({ reference: 'PO-2026-0001' }))
  t.equal(res.statusCode, 201)
  const created = res.json()
  t.type(created.sno, 'number', 'sno is a number here')
  t.equal(res.headers.location, `/query?sno=${created.sno}`)
  t.same(shapeDifferences({ ...created, sno: String(created.sno), reference: undefined }, { ...QUERY_EXAMPLE, reference: undefined }), [], 'the /query shape')
  t.equal(created.tracking_status, 'Created')
  t.equal(created.reference, 'PO-2026-0001')
  t.same(created.current_location, { location_id: 1, title: '花蓮物流中心', address: created.current_location.address })
  t.equal(created.details.length, 1)
  t.match(created.details[0], { status: 'Created', location_id: 1, location_title: '花蓮物流中心' })
  t.ok(Math.abs(Date.parse(created.details[0].time) - Date.now()) < 60_000, 'created now')
  t.match(created.details[0].time, /\+08:00$/, 'in the hub\'s zone')
  t.same({ ...created.recipient, id: 0 }, { id: 0, name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '0966-789-012' })
  const [hub] = await db.selectFrom('locations').select('timezone').where('id', '=', 3).execute()
  t.equal(created.estimated_delivery, addDays(dateInZone(new Date(), hub.timezone), 2), 'default: today in the receiver hub\'s zone + 2 days')

  for (let i = 0; i < 2; i++) {
    const query = await app.inject(res.headers.location as string)
    t.equal(query.statusCode, 200, `read ${i + 1}: found at once`)
    const { reference, ...view } = created
    t.same(query.json(), { ...view, sno: String(created.sno) }, `read ${i + 1}: the same order`)
    t.equal(reference, 'PO-2026-0001')
  }
  const [row] = await db.selectFrom('orders').selectAll().where('sno', '=', created.sno).execute()
  t.match(row, { sender_location_id: 1, receiver_location_id: 3, reference: 'PO-2026-0001', status: 'Created', location_id: 1, change_seq: 1 })
  const changes = await db.selectFrom('change_log').select(['kind', 'seq']).where('sno', '=', created.sno).execute()
  t.same(changes, [{ kind: 'order.created', seq: 1 }], 'the change log has it')
  t.equal(config.cache.ttlSeconds > 0, true)
})

t.test('a given date, no reference, trimmed text, key order and extra spaces do not matter', async (t) => {
  const day = addDays(dateInZone(new Date(), 'Asia/Taipei'), 10)
  const res = await post({ receiver_location_id: 6, estimated_delivery: day, sender_location_id: 4, recipient: { phone: ' 0912345678 ', address: ' 台北市信義區市府路1號 ', name: ' 王小明 ' } })
  t.equal(res.statusCode, 201)
  t.equal(res.json().estimated_delivery, day)
  t.equal(res.json().reference, null)
  t.same(res.json().recipient.name, '王小明')
  t.same(res.json().recipient.phone, '0912345678')
})

t.test('every problem is a 400 (or 422 for an unknown hub) with a code; nothing is written', async (t) => {
  const before = await orderCount()
  const today = dateInZone(new Date(), 'Asia/Taipei')
  const cases: Array<[unknown, number, string]> = [
    [[], 400, 'BODY_INVALID'],
    ['text', 400, 'BODY_INVALID'],
    [null, 400, 'BODY_INVALID'],
    [body({ extra: 1 }), 400, 'PROPERTY_UNKNOWN'],
    [body({ estimatedDelivery: today }), 400, 'PROPERTY_UNKNOWN'],
    [body({ recipient: { name: 'a', address: 'b', phone: '123', email: 'x' } }), 400, 'PROPERTY_UNKNOWN'],
    [body({ recipient: undefined }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: 'someone' }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { address: 'b', phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: '   ', address: 'b', phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'x'.repeat(101), address: 'b', phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a', address: 'b'.repeat(256), phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a\nb', address: 'b', phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a\ud800', address: 'b', phone: '123' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a', address: 'b', phone: 'call me' } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a', address: 'b', phone: '1'.repeat(33) } }), 400, 'RECIPIENT_INVALID'],
    [body({ recipient: { name: 'a', address: 'b', phone: 12345678 } }), 400, 'RECIPIENT_INVALID'],
    [body({ sender_location_id: undefined }), 400, 'LOCATION_INVALID'],
    [body({ sender_location_id: '1' }), 400, 'LOCATION_INVALID'],
    [body({ receiver_location_id: 1.5 }), 400, 'LOCATION_INVALID'],
    [body({ receiver_location_id: 0 }), 400, 'LOCATION_INVALID'],
    [body({ receiver_location_id: 1 }), 400, 'SAME_LOCATION'],
    [body({ receiver_location_id: 999 }), 422, 'LOCATION_NOT_FOUND'],
    [body({ sender_location_id: 999 }), 422, 'LOCATION_NOT_FOUND'],
    [body({ estimated_delivery: '2026-02-30' }), 400, 'DATE_INVALID'],
    [body({ estimated_delivery: '2026/12/01' }), 400, 'DATE_INVALID'],
    [body({ estimated_delivery: `${today}T00:00:00Z` }), 400, 'DATE_INVALID'],
    [body({ estimated_delivery: 20261201 }), 400, 'DATE_INVALID'],
    [body({ estimated_delivery: addDays(today, -3) }), 400, 'DATE_INVALID'],
    [body({ estimated_delivery: addDays(today, 400) }), 400, 'DATE_INVALID'],
    [body({ reference: 'r'.repeat(101) }), 400, 'REFERENCE_INVALID'],
    [body({ reference: '' }), 400, 'REFERENCE_INVALID'],
    [body({ reference: 42 }), 400, 'REFERENCE_INVALID']
  ]
  for (const [payload, status, code] of cases) {
    const res = await app.inject({ method: 'POST', url: '/orders', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } })
    const label = JSON.stringify(payload).slice(0, 90)
    t.equal(res.statusCode, status, `${label} → ${status}`)
    t.equal(res.json().code, code, `${label} → ${code}`)
    t.same(shapeDifferences(res.json(), ERROR_EXAMPLE), [], 'the error shape')
    t.notMatch(res.body, /李大同|澎湖/, 'personal data is not echoed')
  }
  t.equal(await orderCount(), before, 'no order was written')
})

t.test('Idempotency-Key: the same body gets the first answer, one order; another body 422', async (t) => {
  const before = await orderCount()
  const key = 'order-key-1'
  const first = await post(body({ reference: 'idem-1' }), { 'idempotency-key': key })
  t.equal(first.statusCode, 201)
  // The same JSON with its keys in another order and other spacing is the same request.
  const again = await app.inject({
    method: 'POST',
    url: '/orders',
    headers: { 'idempotency-key': key, 'content-type': 'application/json' },
    payload: `{ "reference": "idem-1", "receiver_location_id": 3, "sender_location_id": 1,
      "recipient": { "phone": "0966-789-012", "name": "李大同", "address": "澎湖縣馬公市中正路200號" } }`
  })
  t.equal(again.statusCode, 201)
  t.equal(again.body, first.body, 'byte for byte the first answer')
  t.equal(again.headers.location, first.headers.location)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(await orderCount(), before + 1, 'one order')

  const other = await post(body({ reference: 'idem-2' }), { 'idempotency-key': key })
  t.equal(other.statusCode, 422)
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')
  const events = { events: [{ event_id: 'e1', sno: first.json().sno, status: 'In Transit', location_id: 2, occurred_at: new Date().toISOString() }] }
  const onEvents = await app.inject({ method: 'POST', url: '/events', payload: events, headers: { 'idempotency-key': key } })
  t.equal(onEvents.statusCode, 422, 'the same key on another route is another request')
  t.equal(onEvents.json().code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal(await orderCount(), before + 1, 'still one order')

  const caseSensitive = await post(body({ reference: 'idem-1' }), { 'idempotency-key': key.toUpperCase() })
  t.equal(caseSensitive.statusCode, 201, 'keys are case-sensitive: a new key, a new order')
  t.not(caseSensitive.json().sno, first.json().sno)

  for (const bad of ['', 'k'.repeat(256), 'tab\there']) {
    const res = await app.inject({ method: 'POST', url: '/orders', payload: body(), headers: { 'idempotency-key': bad } })
    t.equal(res.statusCode, 400, `key ${JSON.stringify(bad.slice(0, 10))} (${bad.length} characters)`)
    t.equal(res.json().code, 'IDEMPOTENCY_KEY_INVALID')
  }
})

/** Holds LOCK TABLES orders WRITE on a connection of its own while `fn` runs. */
async function withOrdersLocked<T> (fn: () => Promise<T>): Promise<T> {
  return await db.connection().execute(async (conn) => {
    await sql`LOCK TABLES orders WRITE`.execute(conn)
    try {
      return await fn()
    } finally {
      await sql`UNLOCK TABLES`.execute(conn)
    }
  })
}

/** The id of the API's connection that waits for the lock (on orders, or recipients, which MariaDB locks with it). */
async function blockedWriter (): Promise<number> {
  let id = 0
  const found = await eventually(async () => {
    const { rows } = await sql<{ id: number }>`SELECT ID AS id FROM information_schema.PROCESSLIST
      WHERE DB = ${config.db.database} AND INFO LIKE 'INSERT INTO %' AND STATE LIKE '%lock%'`.execute(db)
    id = Number(rows[0]?.id ?? 0)
    return id > 0
  }, 4000)
  if (!found) throw new Error('the first request never reached the lock')
  return id
}

t.test('Idempotency-Key: a retry while the first still runs gets 409 with Retry-After, then the first answer', async (t) => {
  const before = await orderCount()
  const key = 'order-in-flight'
  const { first, during } = await withOrdersLocked(async () => {
    const first = post(body({ reference: 'slow' }), { 'idempotency-key': key })
    await blockedWriter()
    const during = await post(body({ reference: 'slow' }), { 'idempotency-key': key })
    return { first: { promise: first }, during }
  })
  t.equal(during.statusCode, 409)
  t.equal(during.json().code, 'IDEMPOTENCY_KEY_IN_FLIGHT')
  t.equal(during.headers['retry-after'], '1')
  const done = await first.promise
  t.equal(done.statusCode, 201, 'the first goes through once the lock is gone')
  const after = await post(body({ reference: 'slow' }), { 'idempotency-key': key })
  t.equal(after.statusCode, 201)
  t.equal(after.body, done.body, 'the retry gets the first answer')
  t.equal(await orderCount(), before + 1, 'one order')
})

t.test('Idempotency-Key: a first request that failed leaves the key free for a retry', async (t) => {
  const before = await orderCount()
  const key = 'order-fails-first'
  const failed = await withOrdersLocked(async () => {
    const first = post(body({ reference: 'retry-me' }), { 'idempotency-key': key })
    const id = await blockedWriter()
    await sql`KILL QUERY ${sql.raw(String(id))}`.execute(db)
    return await first
  })
  t.ok(failed.statusCode >= 500, `the first fails (${failed.statusCode})`)
  t.match(failed.json().code, /^[A-Z_]+$/)
  t.equal(await orderCount(), before, 'nothing written')
  const retry = await post(body({ reference: 'retry-me' }), { 'idempotency-key': key })
  t.equal(retry.statusCode, 201, 'the retry runs')
  t.notOk(retry.headers['idempotent-replayed'])
  t.equal(await orderCount(), before + 1)
})

t.test('Idempotency-Key: a pending key left by a dead request is taken over once stale; old keys expire', async (t) => {
  const { requestHash } = await import('../../src/intake/idempotency.js')
  const payload = body({ reference: 'orphan' })
  const hash = requestHash('POST /orders', payload)
  await sql`INSERT INTO idempotency_keys (scope, idem_key, request_hash, owner, created_at)
    VALUES ('loopback', 'orphan-key', ${hash}, 'dead', NOW(3) - INTERVAL 10 MINUTE)`.execute(db)
  const res = await post(payload, { 'idempotency-key': 'orphan-key' })
  t.equal(res.statusCode, 201, 'taken over')
  const replay = await post(payload, { 'idempotency-key': 'orphan-key' })
  t.equal(replay.body, res.body)

  await sql`UPDATE idempotency_keys SET created_at = NOW(3) - INTERVAL 25 HOUR WHERE idem_key = 'orphan-key'`.execute(db)
  const reused = await post(body({ reference: 'new-day' }), { 'idempotency-key': 'orphan-key' })
  t.equal(reused.statusCode, 201, 'after 24 hours the key is new again')
  t.not(reused.json().sno, res.json().sno)
})

t.test('an order with Chinese text, emoji and the longest fields round-trips', async (t) => {
  const recipient = { name: '林'.repeat(99) + '😀', address: '臺'.repeat(255), phone: '+886 (2) 2345-6789 #12' }
  const res = await post(body({ recipient, reference: '參考'.repeat(50) }))
  t.equal(res.statusCode, 201)
  const query = (await app.inject(`/query?sno=${res.json().sno}`)).json()
  t.same({ ...query.recipient, id: 0 }, { ...recipient, id: 0 })
  t.equal(res.json().reference, '參考'.repeat(50))
})
