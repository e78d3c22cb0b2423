import type { FastifyInstance } from 'fastify'
import fastJson from 'fast-json-stringify'
import { ErrorResponse, badRequest } from '../http/errors.js'
import type { Access } from '../http/auth.js'
import { callerOf } from '../http/auth.js'
import { parseEvent } from '../writes/validate.js'
import type { EventInput, EventResult } from '../writes/types.js'
import { idempotent, type IdempotencyStore } from './idempotency.js'
import { EventsRequest, EventsResponse, IdempotencyKeyHeader, MAX_EVENTS } from './schemas.js'

/**
 * 500 events of the largest legal size, even pretty-printed, fit with room to spare (one is at
 * most some 400 bytes). nginx/logistics.conf lets the same through on this path.
 */
export const EVENTS_BODY_LIMIT = 512 * 1024

const serialize = fastJson(EventsResponse)

/** The events of a POST /events body, or the 400 that says why there are none to look at. */
function eventList (body: unknown): unknown[] {
  const events = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { events?: unknown }).events : undefined
  if (!Array.isArray(events)) throw badRequest('EVENTS_REQUIRED', 'The body must be a JSON object { "events": [ ... ] }')
  if (events.length === 0) throw badRequest('EVENTS_EMPTY', 'events must hold at least one event')
  if (events.length > MAX_EVENTS) throw badRequest('TOO_MANY_EVENTS', `At most ${MAX_EVENTS} events per request (got ${events.length}); send the rest in another request`)
  return events
}

/**
 * POST /events: carriers' and devices' scans. Each event is checked on its own (the queue
 * consumer uses the same parseEvent); the valid ones go to the writer in one call (one
 * transaction) and every event gets its result, in the order sent. The writer invalidates the
 * cache before this answers, so /query shows the change at once.
 */
export async function eventRoutes (app: FastifyInstance, { access, store }: { access: Access, store: IdempotencyStore }): Promise<void> {
  app.post('/events', {
    bodyLimit: EVENTS_BODY_LIMIT,
    onRequest: access.guard('ingest'),
    schema: {
      body: EventsRequest,
      headers: IdempotencyKeyHeader,
      response: {
        200: EventsResponse,
        ...Object.fromEntries([400, 401, 403, 409, 413, 415, 422, 429, 503].map((s) => [s, ErrorResponse]))
      }
    },
    // Envelope checked below, each event by parseEvent: one invalid event must not fail the rest.
    validatorCompiler: () => () => true
  }, async (request, reply) => {
    const raw = eventList(request.body as unknown)
    return await idempotent({
      store,
      request,
      reply,
      scope: callerOf(request)?.id ?? 'anonymous',
      route: 'POST /events',
      body: request.body,
      run: async () => {
        const now = Date.now()
        const results: EventResult[] = new Array(raw.length)
        const valid: EventInput[] = []
        const positions: number[] = []
        for (const [i, item] of raw.entries()) {
          const parsed = parseEvent(item, now)
          if (parsed.ok) {
            valid.push(parsed.event)
            positions.push(i)
          } else {
            results[i] = parsed.rejection
          }
        }
        const applied = await app.writer.applyEvents(valid)
        for (const [j, result] of applied.entries()) results[positions[j]] = result
        return { statusCode: 200, body: serialize({ results }) }
      }
    })
  })
}
