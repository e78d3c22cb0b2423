import { sql } from 'kysely'
import type { Db } from '../infra/db.js'
import { FINAL_STATUSES, TRACKING_STATUSES, type TrackingStatus } from '../tracking/statuses.js'
import { slotIso, type Slot } from './slots.js'

export const STALE_HOURS = 48
const STALE_SAMPLE = 20

type StatusCounts = Record<TrackingStatus, number>

export interface ReportSummary {
  /** When the report was made (as in the original report). */
  created_at: string
  /** Orders per current status; all eight statuses are always present (as in the original). */
  trackingSummary: StatusCounts
  slot: string
  timezone: string
  totalOrders: number
  /** What happened since the previous slot: (from, to]. */
  activity: { from: string, to: string, created: number, delivered: number, exceptions: number, returned: number }
  hubs: Array<{ location_id: number, title: string, orders: number, byStatus: StatusCounts }>
  rates: { delivery: number, exception: number }
  /** Hours from creation to delivery over every delivered order (nearest-rank percentiles). */
  transitHours: { deliveredOrders: number, p50: number | null, p90: number | null }
  /** Orders still under way with no event for more than 48 h before the slot. */
  stale: { thresholdHours: number, count: number, oldest: Array<{ sno: number, status: TrackingStatus, location_id: number, last_event_at: string }> }
}

const zeroCounts = (): StatusCounts => Object.fromEntries(TRACKING_STATUSES.map((s) => [s, 0])) as StatusCounts
const ratio = (part: number, whole: number): number => whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000
const OPEN_STATUSES = TRACKING_STATUSES.filter((s) => !FINAL_STATUSES.includes(s))

/** Nearest-rank percentile over (value, count) pairs sorted by value. */
export function percentile (buckets: ReadonlyArray<{ value: number, count: number }>, p: number): number | null {
  const total = buckets.reduce((sum, b) => sum + b.count, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(p * total))
  let seen = 0
  for (const b of buckets) {
    seen += b.count
    if (seen >= rank) return b.value
  }
  return buckets[buckets.length - 1].value
}

/**
 * The report for one slot, from the orders table alone: each order row carries its current
 * status, hub and newest event time, so no query reads tracking_events.
 */
export async function buildSummary (db: Db, slot: Slot, previous: Slot, now = new Date()): Promise<ReportSummary> {
  const from = previous.at
  const to = slot.at
  const staleBefore = new Date(to.getTime() - STALE_HOURS * 3_600_000)

  const [byHub, hubs, activity, created, transit, staleCount, staleOldest] = await Promise.all([
    // Covered by idx_orders_location_status.
    db.selectFrom('orders').select(['location_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['location_id', 'status']).execute(),
    db.selectFrom('locations').select(['id', 'title']).orderBy('id').execute(),
    // Final statuses never change again, so the newest event time is when the order reached it.
    db.selectFrom('orders').select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', 'in', FINAL_STATUSES)
      .where('last_event_at', '>', from).where('last_event_at', '<=', to)
      .groupBy('status').execute(),
    db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('created_at', '>', from).where('created_at', '<=', to).executeTakeFirstOrThrow(),
    // One row per distinct minute of transit time, not per order.
    db.selectFrom('orders')
      .select([sql<number>`TIMESTAMPDIFF(MINUTE, created_at, last_event_at)`.as('minutes'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', '=', 'Delivered').groupBy('minutes').orderBy('minutes').execute(),
    db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', 'in', OPEN_STATUSES).where('last_event_at', '<', staleBefore).executeTakeFirstOrThrow(),
    db.selectFrom('orders').select(['sno', 'status', 'location_id', 'last_event_at'])
      .where('status', 'in', OPEN_STATUSES).where('last_event_at', '<', staleBefore)
      .orderBy('last_event_at').orderBy('sno').limit(STALE_SAMPLE).execute()
  ])

  const trackingSummary = zeroCounts()
  const perHub = new Map<number, StatusCounts>()
  for (const row of byHub) {
    const n = Number(row.n)
    trackingSummary[row.status] += n
    const counts = perHub.get(row.location_id) ?? zeroCounts()
    counts[row.status] += n
    perHub.set(row.location_id, counts)
  }
  const totalOrders = Object.values(trackingSummary).reduce((a, b) => a + b, 0)
  const finished = (status: TrackingStatus): number => Number(activity.find((r) => r.status === status)?.n ?? 0)
  const buckets = transit.map((r) => ({ value: Number(r.minutes), count: Number(r.n) }))
  const hours = (minutes: number | null): number | null => minutes === null ? null : Math.round((minutes / 60) * 10) / 10

  return {
    created_at: now.toISOString(),
    trackingSummary,
    slot: slotIso(slot),
    timezone: slot.timezone,
    totalOrders,
    activity: {
      from: slotIso(previous),
      to: slotIso(slot),
      created: Number(created.n),
      delivered: finished('Delivered'),
      exceptions: finished('Exception'),
      returned: finished('Returned to Sender')
    },
    hubs: hubs.map((hub) => {
      const byStatus = perHub.get(hub.id) ?? zeroCounts()
      return { location_id: hub.id, title: hub.title, orders: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus }
    }),
    rates: {
      delivery: ratio(trackingSummary.Delivered, totalOrders),
      exception: ratio(trackingSummary.Exception, totalOrders)
    },
    transitHours: {
      deliveredOrders: trackingSummary.Delivered,
      p50: hours(percentile(buckets, 0.5)),
      p90: hours(percentile(buckets, 0.9))
    },
    stale: {
      thresholdHours: STALE_HOURS,
      count: Number(staleCount.n),
      oldest: staleOldest.map((r) => ({ sno: r.sno, status: r.status, location_id: r.location_id, last_event_at: r.last_event_at.toISOString() }))
    }
  }
}
