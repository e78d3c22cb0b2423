import type { FastifyInstance } from 'fastify'
import fastJson from 'fast-json-stringify'
import type { Db } from '../infra/db.js'
import type { Location } from '../db/schema.js'
import { addDays, dateInZone } from '../hubs/local-time.js'
import { ErrorResponse, HttpError, badRequest } from '../http/errors.js'
import type { Access } from '../http/auth.js'
import { callerOf } from '../http/auth.js'
import type { OrderDraft } from '../orders/generator.js'
import { findTrackingRowsMany } from '../tracking/queries.js'
import { toTrackingResponse } from '../tracking/view.js'
import { idempotent, type IdempotencyStore } from './idempotency.js'
import { parseOrderInput, type OrderInput } from './order-input.js'
import { IdempotencyKeyHeader, OrderRequest, OrderResponse, type OrderResponseBody } from './schemas.js'

/** A POST /orders body is small: a recipient, two hub ids, a date and a reference. */
export const ORDER_BODY_LIMIT = 16 * 1024
/** Default promise: the day of creation in the receiver hub's zone, plus this many days. */
export const DEFAULT_DELIVERY_DAYS = 2
/** The latest promised date accepted, in days from today. */
export const MAX_DELIVERY_DAYS = 366

const serialize = fastJson(OrderResponse)

/** Hubs and the promised date, checked against the hub table and the hubs' own calendars. */
async function plan (app: FastifyInstance, input: OrderInput, now: Date): Promise<{ sender: Location, receiver: Location, estimatedDelivery: string }> {
  // has() re-reads the hub table for an unknown id at most once a second (resolve() would every time).
  for (const [field, id] of [['sender_location_id', input.senderId], ['receiver_location_id', input.receiverId]] as const) {
    if (!await app.hubs.has(id)) throw new HttpError(422, 'LOCATION_NOT_FOUND', `No hub with ${field} ${id}`)
  }
  const hubs = await app.hubs.resolve([input.senderId, input.receiverId])
  const sender = hubs.get(input.senderId)
  const receiver = hubs.get(input.receiverId)
  if (sender === undefined || receiver === undefined) throw new HttpError(422, 'LOCATION_NOT_FOUND', 'A hub of this order was just removed')
  const today = dateInZone(now, receiver.timezone)
  const earliest = [today, dateInZone(now, sender.timezone)].sort()[0]
  const estimatedDelivery = input.estimatedDelivery ?? addDays(today, DEFAULT_DELIVERY_DAYS)
  if (estimatedDelivery < earliest || estimatedDelivery > addDays(today, MAX_DELIVERY_DAYS)) {
    throw badRequest('DATE_INVALID', `estimated_delivery must be from ${earliest} to ${addDays(today, MAX_DELIVERY_DAYS)} (today in the hubs' zones, up to a year ahead)`)
  }
  return { sender, receiver, estimatedDelivery }
}

/**
 * POST /orders: a carrier's new parcel. One `Created` event at the sender hub, now; the answer is
 * the /query body (sno as a number) plus the reference, with Location: /query?sno=N.
 */
export async function orderRoutes (app: FastifyInstance, { db, access, store }: { db: Db, access: Access, store: IdempotencyStore }): Promise<void> {
  app.post('/orders', {
    bodyLimit: ORDER_BODY_LIMIT,
    onRequest: access.guard('ingest'),
    schema: {
      body: OrderRequest,
      headers: IdempotencyKeyHeader,
      response: {
        201: OrderResponse,
        ...Object.fromEntries([400, 401, 403, 409, 413, 415, 422, 429, 503].map((s) => [s, ErrorResponse]))
      }
    },
    // The body is checked by parseOrderInput (a code per problem); the schema documents it.
    validatorCompiler: () => () => true
  }, async (request, reply) => {
    const input = parseOrderInput(request.body as unknown)
    const now = new Date()
    const { sender, receiver, estimatedDelivery } = await plan(app, input, now)
    const draft: OrderDraft = {
      recipient: input.recipient,
      timeline: {
        route: { sender, receiver, transits: [] },
        events: [{ status: 'Created', hub: sender, occurredAt: now }],
        estimatedDelivery
      },
      reference: input.reference
    }
    return await idempotent({
      store,
      request,
      reply,
      scope: callerOf(request)?.id ?? 'anonymous',
      route: 'POST /orders',
      body: request.body,
      headers: (answer) => ({ location: `/query?sno=${(JSON.parse(answer.body) as { sno: number }).sno}` }),
      run: async (claim) => {
        // The order, its answer and (with a key) the stored answer commit together; the cache
        // is told after the commit (a not-found answer for this sno may be cached).
        const { sno, body } = await db.transaction().execute(async (trx) => {
          const [sno] = await app.writer.createOrders([draft], trx)
          const rows = (await findTrackingRowsMany(trx, [sno])).get(sno) ?? []
          const view = toTrackingResponse(rows, await app.hubs.resolve(rows.map((r) => r.location_id)))
          const response: OrderResponseBody = { ...view, sno, reference: input.reference ?? null }
          const body = serialize(response)
          if (claim !== undefined && !await store.complete(claim, 201, body, trx)) {
            throw new HttpError(409, 'IDEMPOTENCY_KEY_IN_FLIGHT', 'Another request took this Idempotency-Key over; retry to get its answer', { 'retry-after': '1' })
          }
          return { sno, body }
        })
        await app.tracking.invalidate([sno])
        return { statusCode: 201, body, stored: claim !== undefined }
      }
    })
  })
}
