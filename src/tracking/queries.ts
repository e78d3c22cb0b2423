import { CompiledQuery } from 'kysely'
import type { Db } from '../infra/db.js'
import type { TrackingStatus } from './statuses.js'

export interface TrackingRow {
  sno: number
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

/** The statement, built once: per request only the sno changes (no query tree to build). */
export function trackingStatementSql (db: Db): string {
  return db
    .selectFrom('orders as o')
    .innerJoin('recipients as r', 'r.id', 'o.recipient_id')
    .innerJoin('tracking_events as e', 'e.order_sno', 'o.sno')
    .select([
      'o.sno',
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
    .where('o.sno', '=', 0)
    .orderBy('e.occurred_at')
    .orderBy('e.id')
    .compile().sql
}

const statements = new WeakMap<Db, string>()

/**
 * The whole answer to /query in one round trip: the order and its recipient, joined to every
 * event, oldest first (a range of the tracking_events primary key). Hub names come from the
 * in-memory hub directory. An order always has its `Created` event, so no rows means no order.
 */
export async function findTrackingRows (db: Db, sno: number): Promise<TrackingRow[]> {
  let statement = statements.get(db)
  if (statement === undefined) {
    statement = trackingStatementSql(db)
    statements.set(db, statement)
  }
  const { rows } = await db.executeQuery<TrackingRow>(CompiledQuery.raw(statement, [sno]))
  return rows
}
