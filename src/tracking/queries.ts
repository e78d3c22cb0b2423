import { CompiledQuery } from 'kysely'
import type { Db } from '../infra/db.js'
import type { TrackingStatus } from './statuses.js'

export interface TrackingRow {
  sno: number
  /** The order's current status and hub (the monotonic rule's result, kept on the order row). */
  order_status: TrackingStatus
  order_location_id: number
  estimated_delivery: string
  recipient_id: number
  recipient_name: string
  recipient_address: string
  recipient_phone: string
  event_id: number
  status: TrackingStatus
  location_id: number
  occurred_at: Date
}

/** The statement for `count` orders, built once per count: per request only the snos change. */
export function trackingStatementSql (db: Db, count = 1): string {
  return db
    .selectFrom('orders as o')
    .innerJoin('recipients as r', 'r.id', 'o.recipient_id')
    .innerJoin('tracking_events as e', 'e.order_sno', 'o.sno')
    .select([
      'o.sno',
      'o.status as order_status',
      'o.location_id as order_location_id',
      'o.estimated_delivery',
      'r.id as recipient_id',
      'r.name as recipient_name',
      'r.address as recipient_address',
      'r.phone as recipient_phone',
      'e.id as event_id',
      'e.status',
      'e.location_id',
      'e.occurred_at'
    ])
    .where('o.sno', 'in', Array.from({ length: count }, () => 0))
    .compile().sql
}

const byTime = (a: TrackingRow, b: TrackingRow): number =>
  a.occurred_at.getTime() - b.occurred_at.getTime() || a.event_id - b.event_id

const statements = new WeakMap<Db, Map<number, string>>()

function statementFor (db: Db, count: number): string {
  let byCount = statements.get(db)
  if (byCount === undefined) statements.set(db, byCount = new Map())
  let statement = byCount.get(count)
  if (statement === undefined) byCount.set(count, statement = trackingStatementSql(db, count))
  return statement
}

/**
 * The whole answer to /query for several orders in one round trip: each order and its
 * recipient, joined to every event (ranges of the tracking_events primary key), each order's
 * events oldest first. The events arrive in that order already; sorting them here rather than in
 * SQL spares the server a temporary table per statement, and costs one pass over a sorted list.
 * Hub names come from the in-memory hub directory. An order always has its `Created` event, so
 * an sno without rows has no order.
 */
export async function findTrackingRowsMany (db: Db, snos: readonly number[]): Promise<Map<number, TrackingRow[]>> {
  const found = new Map<number, TrackingRow[]>()
  if (snos.length === 0) return found
  const { rows } = await db.executeQuery<TrackingRow>(CompiledQuery.raw(statementFor(db, snos.length), [...snos]))
  for (const row of rows) {
    const sno = Number(row.sno)
    const group = found.get(sno)
    if (group === undefined) found.set(sno, [row])
    else group.push(row)
  }
  for (const group of found.values()) group.sort(byTime)
  return found
}
