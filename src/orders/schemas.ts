import { Type, type Static } from 'typebox'
import { StatusSchema } from '../tracking/schemas.js'

export const FakeQuery = Type.Object({
  num: Type.Optional(Type.String({ description: 'How many orders to create: 1–100 (more is capped at 100), default 10' }))
})

const FakeEvent = Type.Object({
  location_id: Type.Integer(),
  order_sno: Type.Integer(),
  tracking_status: StatusSchema
})

/** The documented /fake answer; `sno` is a number here. */
export const FakeResponse = Type.Object({
  data: Type.Array(Type.Object({
    sno: Type.Integer(),
    details: Type.Array(FakeEvent),
    tracking_status: FakeEvent
  }))
})

export type FakeResponseBody = Static<typeof FakeResponse>
