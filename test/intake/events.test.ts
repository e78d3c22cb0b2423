import t from 'tap'
import { sql } from 'kysely'
import type { LightMyRequestResponse as Response } from 'fastify'
import { buildTestApp } from '../helpers/app.js'
import { ERROR_EXAMPLE, shapeDifferences } from '../helpers/contract.js'
import { insertKnownOrder } from '../helpers/orders.js'

const { app, database } = await buildTestApp(t, 'intake_events')
const db = database.db

interface Item { event_id: string, sno: unknown, status: unknown, location_id: unknown, occurred_at: unknown, vehicle_id?: unknown }
const post = async (events: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  await app.inject({ method: 'POST', url: '/events', payload: { events } as Record<string, unknown>, headers })
const minutesAgo = (m: number): string => new Date(Date.now() - m * 60_000).toISOString()

/** A parcel created an hour ago at hub 1, still there. */
async function freshOrder (): Promise<number> {
  const { sno } = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: minutesAgo(60) }] })
  return sno
}
const query = async (sno: number): Promise<{ tracking_status: string, current_location: { location_id: number }, details: Array<{ status: string }> }> =>
  (await app.inject(`/query?sno=${sno}`)).json()
const stored = async (sno: number, eventId: string): Promise<number> =>
  Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM tracking_events WHERE order_sno = ${sno} AND event_id = ${eventId}`.execute(db)).rows[0].n)

t.test('after a 200, /query shows the change at once, through the near cache and Redis alike', async (t) => {
  const sno = await freshOrder()
  t.equal((await query(sno)).tracking_status, 'Created', 'the old answer is cached')
  t.equal((await query(sno)).tracking_status, 'Created', 'and read from the cache')
  const res = await post([{ event_id: 'scan-1', sno, status: 'Package Received', location_id: 1, occurred_at: minutesAgo(30) }])
  t.equal(res.statusCode, 200)
  t.same(res.json(), { results: [{ event_id: 'scan-1', result: 'accepted' }] })
  for (let i = 1; i <= 2; i++) {
    const body = await query(sno)
    t.equal(body.tracking_status, 'Package Received', `read ${i}: the new status`)
    t.same(body.details.map((d) => d.status), ['Created', 'Package Received'], `read ${i}: the new event in the timeline`)
  }
  const res2 = await post([{ event_id: 'scan-2', sno, status: 'In Transit', location_id: 7, occurred_at: '2099-01-01T00:00:00+08:00' }])
  t.equal(res2.json().results[0].code, 'TIME_INVALID', 'more than 5 minutes in the future')
  const res3 = await post([{ event_id: 'scan-2', sno, status: 'In Transit', location_id: 7, occurred_at: new Date(Date.now() + 60_000).toISOString().replace('Z', '+00:00') }])
  t.equal(res3.json().results[0].result, 'accepted', 'a minute ahead (clock skew) is fine')
  const body = await query(sno)
  t.equal(body.tracking_status, 'In Transit')
  t.equal(body.current_location.location_id, 7)
})

t.test('the monotonic rule through HTTP', async (t) => {
  const sno = await freshOrder()
  t.equal((await post([{ event_id: 'm-1', sno, status: 'In Transit', location_id: 7, occurred_at: minutesAgo(20) }])).statusCode, 200)
  await query(sno)
  const late = await post([{ event_id: 'm-0', sno, status: 'Package Received', location_id: 1, occurred_at: minutesAgo(40) }])
  t.same(late.json().results, [{ event_id: 'm-0', result: 'accepted' }], 'a late, older event is accepted')
  let body = await query(sno)
  t.equal(body.tracking_status, 'In Transit', 'but does not move the status')
  t.same(body.details.map((d) => d.status), ['Created', 'Package Received', 'In Transit'], 'it is in the timeline, in time order')

  await post([{ event_id: 'm-2', sno, status: 'Delivered', location_id: 3, occurred_at: minutesAgo(10) }])
  const after = await post([{ event_id: 'm-3', sno, status: 'Exception', location_id: 3, occurred_at: minutesAgo(5) }])
  t.equal(after.json().results[0].result, 'accepted', 'an event after Delivered is recorded')
  body = await query(sno)
  t.equal(body.tracking_status, 'Delivered', 'but the status stays Delivered')
  t.equal(body.current_location.location_id, 3)
  t.equal(body.details.at(-1)?.status, 'Exception')
})

t.test('duplicates: the same event_id twice in one request and again later is stored once', async (t) => {
  const sno = await freshOrder()
  const event = { event_id: 'dup-1', sno, status: 'Package Received', location_id: 1, occurred_at: minutesAgo(30) }
  const first = await post([event, { ...event }])
  t.same(first.json().results, [{ event_id: 'dup-1', result: 'accepted' }, { event_id: 'dup-1', result: 'duplicate' }])
  const again = await post([event])
  t.same(again.json().results, [{ event_id: 'dup-1', result: 'duplicate' }], 'a re-sent event is a duplicate')
  const changed = await post([{ ...event, status: 'In Transit', location_id: 7 }])
  t.same(changed.json().results, [{ event_id: 'dup-1', result: 'duplicate' }], 'the id decides, whatever the content')
  t.equal(await stored(sno, 'dup-1'), 1, 'stored once')
  t.equal((await query(sno)).details.length, 2)
  const other = await freshOrder()
  const elsewhere = await post([{ ...event, sno: other }])
  t.same(elsewhere.json().results, [{ event_id: 'dup-1', result: 'accepted' }], 'ids are unique per parcel')
})

t.test('per-event rejections with codes; the rest commit together, in the order sent', async (t) => {
  const sno = await freshOrder()
  const good = (id: string, status = 'Package Received'): Item => ({ event_id: id, sno, status, location_id: 1, occurred_at: minutesAgo(30) })
  const events: unknown[] = [
    good('ok-1'),
    { ...good('no-order'), sno: 987654321 },
    { ...good('no-hub'), location_id: 999 },
    { ...good('bad-status'), status: 'Lost' },
    { ...good('no-offset'), occurred_at: '2026-11-29T08:15:00' },
    { ...good('future'), occurred_at: new Date(Date.now() + 3_600_000).toISOString() },
    { ...good('bad-sno'), sno: -1 },
    { ...good('x'.repeat(65)) },
    'not an object',
    null,
    { ...good('bad-vehicle'), vehicle_id: 'has space' },
    { ...good('ok-2', 'In Transit'), location_id: 7, vehicle_id: 'TPE-01', occurred_at: minutesAgo(20), extra: 'ignored' }
  ]
  const res = await post(events)
  t.equal(res.statusCode, 200)
  const results = res.json().results as Array<{ event_id: string, result: string, code?: string, message?: string }>
  t.equal(results.length, events.length, 'one result per event')
  t.same(results.map((r) => [r.result, r.code ?? '']), [
    ['accepted', ''],
    ['rejected', 'ORDER_NOT_FOUND'],
    ['rejected', 'LOCATION_NOT_FOUND'],
    ['rejected', 'STATUS_INVALID'],
    ['rejected', 'TIME_INVALID'],
    ['rejected', 'TIME_INVALID'],
    ['rejected', 'EVENT_INVALID'],
    ['rejected', 'EVENT_INVALID'],
    ['rejected', 'EVENT_INVALID'],
    ['rejected', 'EVENT_INVALID'],
    ['rejected', 'EVENT_INVALID'],
    ['accepted', '']
  ])
  t.same(results.map((r) => r.event_id).slice(0, 7), ['ok-1', 'no-order', 'no-hub', 'bad-status', 'no-offset', 'future', 'bad-sno'], 'in the order sent')
  t.ok(results.filter((r) => r.result === 'rejected').every((r) => typeof r.message === 'string' && r.message.length > 0), 'each rejection says why')
  t.equal((await query(sno)).tracking_status, 'In Transit', 'the valid ones committed')
  const [row] = await db.selectFrom('tracking_events').select(['vehicle_id']).where('event_id', '=', 'ok-2').execute()
  t.equal(row.vehicle_id, 'TPE-01')
})

t.test('500 events in one request are fine; 501 and none are a 400', async (t) => {
  const snos = await Promise.all(Array.from({ length: 5 }, async () => await freshOrder()))
  const events = Array.from({ length: 500 }, (_, i) => ({
    event_id: `bulk-${i}-${'p'.repeat(50)}`,
    sno: snos[i % 5],
    status: 'In Transit',
    location_id: [3, 4, 6, 7][i % 4],
    occurred_at: new Date(Date.now() - (600 - i) * 1000).toISOString().replace('Z', '+00:00'),
    vehicle_id: 'TPE-01-long-vehicle-identifier00'
  }))
  const pretty = JSON.stringify({ events }, null, 2)
  t.ok(pretty.length > 128 * 1024, `a large body (${pretty.length} bytes)`)
  const res = await app.inject({ method: 'POST', url: '/events', payload: pretty, headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  const results = res.json().results as Array<{ result: string }>
  t.equal(results.length, 500)
  t.ok(results.every((r) => r.result === 'accepted'))
  t.equal((await query(snos[0])).details.length, 101)

  const tooMany = await post([...events, { ...events[0], event_id: 'one-more' }])
  t.equal(tooMany.statusCode, 400)
  t.equal(tooMany.json().code, 'TOO_MANY_EVENTS')
  t.equal(await stored(snos[0], 'one-more'), 0, 'nothing of it is stored')
  const none = await post([])
  t.equal(none.statusCode, 400)
  t.equal(none.json().code, 'EVENTS_EMPTY')
  for (const payload of [{}, { events: 'x' }, { events: {} }, [], { event: [] }]) {
    const res = await app.inject({ method: 'POST', url: '/events', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().code, 'EVENTS_REQUIRED')
    t.same(shapeDifferences(res.json(), ERROR_EXAMPLE), [])
  }
  const huge = await app.inject({ method: 'POST', url: '/events', payload: `{"events":[${'1,'.repeat(300_000)}1]}`, headers: { 'content-type': 'application/json' } })
  t.equal(huge.statusCode, 413)
  t.equal(huge.json().code, 'BODY_TOO_LARGE')
})

t.test('Idempotency-Key on /events: a retry gets the first answer (accepted, not duplicate)', async (t) => {
  const sno = await freshOrder()
  const events = [{ event_id: 'idem-e1', sno, status: 'Package Received', location_id: 1, occurred_at: minutesAgo(30) }]
  const first = await post(events, { 'idempotency-key': 'batch-0001' })
  t.same(first.json().results, [{ event_id: 'idem-e1', result: 'accepted' }])
  const retry = await post(events, { 'idempotency-key': 'batch-0001' })
  t.equal(retry.statusCode, 200)
  t.equal(retry.body, first.body, 'the first answer')
  t.equal(retry.headers['idempotent-replayed'], 'true')
  const plain = await post(events)
  t.same(plain.json().results, [{ event_id: 'idem-e1', result: 'duplicate' }], 'without the key: a duplicate')
  const other = await post([{ ...events[0], event_id: 'idem-e2' }], { 'idempotency-key': 'batch-0001' })
  t.equal(other.statusCode, 422)
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal(await stored(sno, 'idem-e2'), 0)
})
