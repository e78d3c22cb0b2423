import { isoInZone } from '../hubs/local-time.js'
import type { Location } from '../db/schema.js'
import type { TrackingRow } from './queries.js'
import type { TrackingResponseBody } from './schemas.js'

const UNKNOWN_HUB = { title: '', address: '', timezone: 'UTC' }

/** Rows of one order (oldest event first) and the hubs they name, as the documented /query answer. */
export function toTrackingResponse (rows: readonly TrackingRow[], hubs: ReadonlyMap<number, Location>): TrackingResponseBody {
  const first = rows[0]
  // Event hubs come from the locations table when events are written; the directory re-reads the
  // table for an id it lacks, and an id that is still unknown shows with an empty title.
  const hub = (id: number): Pick<Location, 'title' | 'address' | 'timezone'> => hubs.get(id) ?? UNKNOWN_HUB
  // The status is the order row's: a late event is in the timeline without moving it.
  const current = hub(first.order_location_id)
  return {
    sno: String(first.sno),
    tracking_status: first.order_status,
    estimated_delivery: first.estimated_delivery,
    current_location: {
      location_id: first.order_location_id,
      title: current.title,
      address: current.address
    },
    details: rows.map((row) => {
      const at = hub(row.location_id)
      const time = isoInZone(row.occurred_at, at.timezone)
      return {
        id: row.event_id,
        // The local calendar date: the time's first ten characters (dateInZone, computed once).
        date: time.slice(0, 10),
        time,
        status: row.status,
        location_id: row.location_id,
        location_title: at.title
      }
    }),
    recipient: {
      id: first.recipient_id,
      name: first.recipient_name,
      address: first.recipient_address,
      phone: first.recipient_phone
    }
  }
}

/** 李大同 → 李**; 0966789012 → *******012; 澎湖縣馬公市中正路200號 → 澎湖縣馬公市. */
export function maskRecipient (recipient: TrackingResponseBody['recipient']): TrackingResponseBody['recipient'] {
  const name = [...recipient.name]
  const digits = recipient.phone.replace(/\D/g, '')
  const city = /^.+?[縣市](?:.{1,3}?[市區鄉鎮])?/u.exec(recipient.address)?.[0]
  return {
    id: recipient.id,
    name: name.length <= 1 ? '*' : name[0] + '*'.repeat(name.length - 1),
    phone: '*'.repeat(Math.max(digits.length - 3, 0)) + digits.slice(-3),
    address: city ?? ''
  }
}
