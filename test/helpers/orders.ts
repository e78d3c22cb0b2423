import type { Db } from '../../src/infra/db.js'
import type { TrackingStatus } from '../../src/tracking/statuses.js'

export interface KnownEvent {
  status: TrackingStatus
  locationId: number
  at: string
}

/**
 * Writes one order exactly as given (events inserted newest first, so that the answer's
 * order can only come from the query) and returns its sno and event ids in time order.
 */
export async function insertKnownOrder (db: Db, options: {
  recipient?: { name: string, address: string, phone: string }
  estimatedDelivery?: string
  events?: KnownEvent[]
} = {}): Promise<{ sno: number, recipientId: number, eventIds: number[] }> {
  const recipient = options.recipient ?? { name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '096678901' }
  const events = options.events ?? [
    { status: 'Created', locationId: 1, at: '2023-11-30T01:15:00.000Z' },
    { status: 'Package Received', locationId: 1, at: '2023-11-30T04:00:00.000Z' },
    { status: 'In Transit', locationId: 7, at: '2023-12-01T03:30:00.000Z' },
    { status: 'Out for Delivery', locationId: 3, at: '2023-12-01T23:00:00.000Z' },
    { status: 'Delivery Attempted', locationId: 3, at: '2023-12-02T00:10:00.000Z' },
    { status: 'Delivered', locationId: 3, at: '2023-12-02T01:15:00.000Z' }
  ]
  return await db.transaction().execute(async (trx) => {
    const r = await trx.insertInto('recipients').values({ ...recipient, created_at: new Date(), updated_at: new Date() }).executeTakeFirstOrThrow()
    const recipientId = Number(r.insertId)
    const last = events[events.length - 1]
    const o = await trx.insertInto('orders').values({
      recipient_id: recipientId,
      status: last.status,
      location_id: last.locationId,
      estimated_delivery: options.estimatedDelivery ?? '2023-12-02',
      created_at: new Date(events[0].at),
      last_event_at: new Date(last.at),
      status_at: new Date(last.at),
      updated_at: new Date()
    }).executeTakeFirstOrThrow()
    const sno = Number(o.insertId)
    const ids: Array<{ at: string, id: number }> = []
    for (const event of [...events].reverse()) {
      const e = await trx.insertInto('tracking_events').values({
        order_sno: sno, status: event.status, location_id: event.locationId, occurred_at: new Date(event.at), created_at: new Date()
      }).executeTakeFirstOrThrow()
      ids.push({ at: event.at, id: Number(e.insertId) })
    }
    const eventIds = events.map((event) => ids.find((i) => i.at === event.at)?.id ?? -1)
    return { sno, recipientId, eventIds }
  })
}
