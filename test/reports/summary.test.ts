import t from 'tap'
import { sql } from 'kysely'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { buildSummary, percentile } from '../../src/reports/summary.js'
import { ReportSchedule } from '../../src/reports/slots.js'
import { TRACKING_STATUSES } from '../../src/tracking/statuses.js'
import { insertKnownOrder } from '../helpers/orders.js'

const config = testConfig('reports_summary')
const { db } = await freshDatabase(t, config)
const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
const now = new Date('2026-11-20T10:00:00.000Z')
const slot = schedule.latest(now)
const previous = schedule.previous(slot)

t.test('an empty database still lists all eight statuses', async (t) => {
  const summary = await buildSummary(db, slot, previous, now)
  t.same(Object.keys(summary.trackingSummary), [...TRACKING_STATUSES])
  t.ok(Object.values(summary.trackingSummary).every((n) => n === 0))
  t.equal(summary.totalOrders, 0)
  t.same(summary.transitHours, { deliveredOrders: 0, p50: null, p90: null })
  t.same(summary.rates, { delivery: 0, exception: 0 })
  t.equal(summary.hubs.length, 16)
})

t.test('every figure matches what the event table says', async (t) => {
  await bulkLoadOrders(db, { count: 3990, seed: 20261120, now, batchSize: 1000 })
  // Parcels that stopped moving days ago (the generator's are all recent).
  for (let i = 0; i < 10; i++) {
    const day = `2026-11-1${i % 5}`
    await insertKnownOrder(db, {
      events: [
        { status: 'Created', locationId: 7, at: `${day}T01:00:0${i}.000Z` },
        { status: 'Package Received', locationId: 7, at: `${day}T03:00:0${i}.000Z` },
        { status: i % 2 === 0 ? 'In Transit' : 'Out for Delivery', locationId: 3, at: `${day}T09:00:0${i}.000Z` }
      ]
    })
  }
  const summary = await buildSummary(db, slot, previous, now)

  // The expected figures, worked out from tracking_events alone (the report never reads it).
  const { rows: events } = await sql<{ order_sno: number, status: string, location_id: number, occurred_at: Date }>`
    SELECT order_sno, status, location_id, occurred_at FROM tracking_events ORDER BY order_sno, occurred_at, id`.execute(db)
  const orders = new Map<number, { first: Date, last: { status: string, location_id: number, occurred_at: Date } }>()
  for (const e of events) {
    const o = orders.get(e.order_sno)
    if (o === undefined) orders.set(e.order_sno, { first: e.occurred_at, last: e })
    else o.last = e
  }
  const list = [...orders.entries()].map(([sno, o]) => ({ sno, ...o }))
  const inWindow = (d: Date): boolean => d > previous.at && d <= slot.at
  const count = (f: (o: typeof list[number]) => boolean): number => list.filter(f).length

  t.equal(summary.totalOrders, 4000)
  for (const status of TRACKING_STATUSES) {
    t.equal(summary.trackingSummary[status], count((o) => o.last.status === status), `trackingSummary.${status}`)
  }
  for (const hub of summary.hubs) {
    t.equal(hub.orders, count((o) => o.last.location_id === hub.location_id), `hub ${hub.location_id} orders`)
    for (const status of TRACKING_STATUSES) {
      if (hub.byStatus[status] !== count((o) => o.last.location_id === hub.location_id && o.last.status === status)) t.fail(`hub ${hub.location_id} ${status}`)
    }
  }
  t.same(summary.activity, {
    from: '2026-11-20T08:00:00.000+08:00',
    to: '2026-11-20T16:00:00.000+08:00',
    created: count((o) => inWindow(o.first)),
    delivered: count((o) => o.last.status === 'Delivered' && inWindow(o.last.occurred_at)),
    exceptions: count((o) => o.last.status === 'Exception' && inWindow(o.last.occurred_at)),
    returned: count((o) => o.last.status === 'Returned to Sender' && inWindow(o.last.occurred_at))
  }, 'activity since the previous slot')
  t.ok(summary.activity.created > 0 && summary.activity.delivered > 0, 'the window is not empty')

  t.same(summary.rates, {
    delivery: Math.round(count((o) => o.last.status === 'Delivered') / 4000 * 10_000) / 10_000,
    exception: Math.round(count((o) => o.last.status === 'Exception') / 4000 * 10_000) / 10_000
  })

  const transit = list.filter((o) => o.last.status === 'Delivered')
    .map((o) => Math.floor((o.last.occurred_at.getTime() - o.first.getTime()) / 60_000)).sort((a, b) => a - b)
  const nearestRank = (p: number): number => Math.round(transit[Math.ceil(p * transit.length) - 1] / 60 * 10) / 10
  t.same(summary.transitHours, { deliveredOrders: transit.length, p50: nearestRank(0.5), p90: nearestRank(0.9) })

  const staleBefore = slot.at.getTime() - 48 * 3_600_000
  const stale = list.filter((o) => !['Delivered', 'Returned to Sender', 'Exception'].includes(o.last.status) && o.last.occurred_at.getTime() < staleBefore)
    .sort((a, b) => a.last.occurred_at.getTime() - b.last.occurred_at.getTime() || a.sno - b.sno)
  t.equal(summary.stale.count, stale.length)
  t.ok(stale.length > 0, 'some parcels have stalled')
  t.same(summary.stale.oldest.map((o) => o.sno), stale.slice(0, 20).map((o) => o.sno))
  t.equal(summary.created_at, now.toISOString())
  t.equal(summary.slot, '2026-11-20T16:00:00.000+08:00')
})

t.test('the status counts do not read tracking_events', async (t) => {
  const { rows } = await sql<{ table: string | null, key: string | null }>`
    EXPLAIN SELECT location_id, status, COUNT(*) FROM orders GROUP BY location_id, status`.execute(db)
  t.same(rows.map((r) => (r as unknown as { table: string }).table), ['orders'])
  t.equal((rows[0] as unknown as { key: string }).key, 'idx_orders_location_status', 'answered from an index of orders')
})

t.test('nearest-rank percentiles', async (t) => {
  const buckets = [{ value: 10, count: 1 }, { value: 20, count: 2 }, { value: 30, count: 1 }]
  t.equal(percentile(buckets, 0.5), 20)
  t.equal(percentile(buckets, 0.9), 30)
  t.equal(percentile(buckets, 0.25), 10)
  t.equal(percentile([], 0.5), null)
})
