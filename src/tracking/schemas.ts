import { Type, type Static } from 'typebox'
import { TRACKING_STATUSES } from './statuses.js'

export const StatusSchema = Type.Enum(TRACKING_STATUSES)

export const TrackingEvent = Type.Object({
  id: Type.Integer(),
  date: Type.String({ description: 'YYYY-MM-DD in the hub\'s time zone' }),
  time: Type.String({ description: 'ISO-8601 with the hub\'s UTC offset' }),
  status: StatusSchema,
  location_id: Type.Integer(),
  location_title: Type.String()
})

/** The documented /query answer, plus `time` on each event. */
export const TrackingResponse = Type.Object({
  sno: Type.String(),
  tracking_status: StatusSchema,
  estimated_delivery: Type.String(),
  current_location: Type.Object({
    location_id: Type.Integer(),
    title: Type.String(),
    address: Type.String()
  }),
  details: Type.Array(TrackingEvent),
  recipient: Type.Object({
    id: Type.Integer(),
    name: Type.String(),
    address: Type.String(),
    phone: Type.String()
  })
})

export type TrackingResponseBody = Static<typeof TrackingResponse>
