import t from 'tap'
import { sql } from 'kysely'
import { statusOf } from '../../src/writes/status-rule.js'
import type { TrackingStatus } from '../../src/tracking/statuses.js'
import { consumerFor, drain, ingestSetup, makeEvents, makeOrders, publish, stored, until } from './helpers.js'
import { seeded } from '../../src/simulator/random.js'

/**
 * The same 10,000 events published twice, shuffled (at-least-once in): each stored once, and every
 * order's status is the one its stored timeline gives by the monotonic rule, whatever the order
 * of arrival.
 */
const ctx = await ingestSetup(t, 'duplicates')
const fixture = await makeOrders(t, ctx.db, 1000)
const events = makeEvents(fixture, 10_000, 'dup', 3)
const rnd = seeded(11)
const twice = [...events, ...events]
for (let i = twice.length - 1; i > 0; i--) {
  const j = Math.floor(rnd() * (i + 1))
  ;[twice[i], twice[j]] = [twice[j], twice[i]]
}

t.test('20,000 messages, 10,000 events: each stored once, the rest answered as duplicates', async (t) => {
  await publish(ctx.queue, twice)
  const consumer = consumerFor(t, ctx)
  const started = Date.now()
  await consumer.start()
  t.ok(await until(() => consumer.counters.stored + consumer.counters.duplicates === twice.length, 100_000), 'every message settled')
  const seconds = (Date.now() - started) / 1000
  const s = await stored(ctx.db, 'dup')
  t.equal(s.count, events.length, 'every event stored')
  t.equal(s.doubled, 0, 'none twice')
  t.equal(s.changes, events.length, 'one change-log row per event')
  t.equal(consumer.counters.stored, events.length)
  t.equal(consumer.counters.duplicates, events.length)
  t.equal(consumer.counters.deadLetteredTotal, 0, 'nothing dead-lettered')
  t.same(await drain(ctx.dead), [])
  t.comment(`${twice.length} messages in ${seconds.toFixed(1)} s (${Math.round(twice.length / seconds)}/s), ${consumer.counters.batches} transactions`)
})

t.test("every order's status is statusOf(its stored timeline)", async (t) => {
  const { rows } = await sql<{ id: number, order_sno: number, status: TrackingStatus, occurred_at: Date }>`
    SELECT id, order_sno, status, occurred_at FROM tracking_events ORDER BY order_sno`.execute(ctx.db)
  const timelines = new Map<number, Array<{ id: number, status: TrackingStatus, location_id: number, occurred_at: Date }>>()
  for (const r of rows) {
    const list = timelines.get(Number(r.order_sno)) ?? []
    list.push({ id: Number(r.id), status: r.status, location_id: 0, occurred_at: new Date(r.occurred_at) })
    timelines.set(Number(r.order_sno), list)
  }
  const orders = await ctx.db.selectFrom('orders').select(['sno', 'status']).execute()
  const wrong = orders.filter((o) => statusOf(timelines.get(Number(o.sno)) ?? []) !== o.status)
  t.equal(wrong.length, 0, `${orders.length} orders checked; wrong: ${wrong.slice(0, 5).map((o) => o.sno).join(', ')}`)
  const touched = new Set(events.map((e) => e.sno))
  t.ok(touched.size > 900, `${touched.size} orders received queue events`)
})
