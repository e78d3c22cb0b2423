import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { ErrorResponse, notFound } from '../http/errors.js'
import { JSON_TYPE } from '../http/response-headers.js'
import type { NotFoundLimiter } from '../http/rate-limit.js'
import { NOT_FOUND } from './cache.js'
import { TrackingResponse } from './schemas.js'
import { parseSno } from './sno.js'
import type { Lookup, TrackingService } from './service.js'

/**
 * GET /query?sno=N — where customers look up a parcel. An answer this process holds is usually
 * sent before the request gets here (src/tracking/hit-shortcut.ts); this route is the reference
 * for what the answer is, and answers everything else.
 */
export const trackingRoutes: FastifyPluginAsyncTypebox<{ tracking: TrackingService, notFound: NotFoundLimiter }> = async (app, { tracking, notFound: notFoundLimiter }) => {
  const answer = (sno: number, reply: FastifyReply, body: Lookup): void => {
    if (body === null) {
      notFoundLimiter.recordNotFound(reply.request)
      throw notFound('TRACKING_NOT_FOUND', `No order with sno ${sno}`)
    }
    // The cached answer goes out as it is: no parse, no re-serialization.
    reply.type(JSON_TYPE).send(body)
  }

  app.get('/query', {
    // The query string is checked by parseSno alone (one place for every sno rule and code).
    schema: { response: { 200: TrackingResponse, 400: ErrorResponse, 404: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse } }
  }, (request, reply) => {
    const sno = parseSno((request.query as { sno?: unknown }).sno)
    notFoundLimiter.checkBudget(request)
    // Hot path: an answer held in this process is sent without a promise or a round trip.
    const local = tracking.peek(sno)
    if (local !== undefined) {
      answer(sno, reply, local === NOT_FOUND ? null : local)
      return
    }
    return tracking.lookup(sno).then((body) => { answer(sno, reply, body) })
  })
}
