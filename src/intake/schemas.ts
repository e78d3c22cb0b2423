import { Type, type Static } from 'typebox'
import { StatusSchema, TrackingEvent } from '../tracking/schemas.js'

/**
 * Request and response schemas of POST /orders and POST /events, for the documentation
 * (OpenAPI). The bodies are checked by hand (src/intake/order-input.ts and
 * src/writes/validate.ts) so that every problem has its own code, and so that HTTP and the queue
 * check events identically; these schemas describe the same rules.
 */

export const MAX_NAME = 100
export const MAX_ADDRESS = 255
export const MAX_PHONE = 32
export const MAX_REFERENCE = 100
/** Events per POST /events (contract). */
export const MAX_EVENTS = 500
export const MAX_IDEMPOTENCY_KEY = 255

export const OrderRequest = Type.Object({
  recipient: Type.Object({
    name: Type.String({ minLength: 1, maxLength: MAX_NAME }),
    address: Type.String({ minLength: 1, maxLength: MAX_ADDRESS }),
    phone: Type.String({ minLength: 3, maxLength: MAX_PHONE, pattern: '^[0-9+()#. -]+$', description: 'Digits, spaces and + ( ) # . -; at least 3 digits' })
  }, { additionalProperties: false }),
  sender_location_id: Type.Integer({ minimum: 1, description: 'The hub where the parcel is handed in (its Created event)' }),
  receiver_location_id: Type.Integer({ minimum: 1, description: 'The hub that delivers it; not the sender hub' }),
  estimated_delivery: Type.Optional(Type.String({
    format: 'date',
    description: 'YYYY-MM-DD, from today (the receiver hub\'s zone) to a year ahead; default: the day of creation in the receiver hub\'s zone plus 2 days'
  })),
  reference: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: MAX_REFERENCE }), Type.Null()], { description: 'The sender\'s own reference, returned as given' }))
}, { additionalProperties: false, description: 'Unknown properties are refused (400 PROPERTY_UNKNOWN), so that a misspelt optional field is not silently lost' })

/** The /query answer, with `sno` as a number, and the sender's reference. */
export const OrderResponse = Type.Object({
  sno: Type.Integer(),
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
  }),
  reference: Type.Union([Type.String(), Type.Null()])
})

export type OrderResponseBody = Static<typeof OrderResponse>

export const EventItem = Type.Object({
  event_id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$', description: 'Unique per parcel and source; a second event with the same id for the same parcel is a duplicate' }),
  sno: Type.Integer({ minimum: 1 }),
  status: StatusSchema,
  location_id: Type.Integer({ minimum: 1 }),
  occurred_at: Type.String({ description: 'ISO-8601 with an offset, e.g. 2026-11-29T08:15:00+08:00; at most 5 minutes in the future' }),
  vehicle_id: Type.Optional(Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$' }), Type.Null()]))
}, { description: 'Each event is checked on its own: an invalid one is answered as rejected with a code, the others go ahead. Unknown properties are ignored.' })

export const EventsRequest = Type.Object({
  events: Type.Array(EventItem, { minItems: 1, maxItems: MAX_EVENTS })
})

export const EventResultSchema = Type.Object({
  event_id: Type.String(),
  result: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate'), Type.Literal('rejected')]),
  code: Type.Optional(Type.String({ description: 'ORDER_NOT_FOUND, LOCATION_NOT_FOUND, STATUS_INVALID, TIME_INVALID or EVENT_INVALID' })),
  message: Type.Optional(Type.String())
})

export const EventsResponse = Type.Object({
  results: Type.Array(EventResultSchema, { description: 'One per event, in the order sent' })
})

export type EventsResponseBody = Static<typeof EventsResponse>

export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: MAX_IDEMPOTENCY_KEY,
    description: 'Makes a retry safe for 24 hours: the same key with the same body returns the first answer; with another body 422 IDEMPOTENCY_KEY_REUSED; while the first is still running 409 IDEMPOTENCY_KEY_IN_FLIGHT'
  }))
})
