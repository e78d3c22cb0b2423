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
  location_title: string
  location_address: string
  location_timezone: string
  occurred_at: Date
}

/**
 * The whole answer to /query in one round trip: the order and its recipient, joined to every
 * event (oldest first) and the event's hub. An order always has at least its `Created` event,
 * so no rows means no such order.
 */
export async function findTrackingRows (db: Db, sno: number): Promise<TrackingRow[]> {
  return await db
    .selectFrom('orders as o')
    .innerJoin('recipients as r', 'r.id', 'o.recipient_id')
    .innerJoin('tracking_events as e', 'e.order_sno', 'o.sno')
    .innerJoin('locations as l', 'l.id', 'e.location_id')
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
      'l.title as location_title',
      'l.address as location_address',
      'l.timezone as location_timezone',
      'e.occurred_at'
    ])
    .where('o.sno', '=', sno)
    .orderBy('e.occurred_at')
    .orderBy('e.id')
    .execute()
}
