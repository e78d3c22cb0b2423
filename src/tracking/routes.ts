import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorResponse, badRequest, notFound } from '../http/errors.js'
import { TrackingQuery, TrackingResponse } from './schemas.js'
import { parseSno } from './sno.js'
import type { TrackingService } from './service.js'
import type { NotFoundLimiter } from '../http/rate-limit.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/** GET /query?sno=N — where customers look up a parcel. */
export const trackingRoutes: FastifyPluginAsyncTypebox<{ tracking: TrackingService, notFound: NotFoundLimiter }> = async (app, { tracking, notFound: notFoundLimiter }) => {
  app.get('/query', {
    schema: {
      querystring: TrackingQuery,
      response: { 200: TrackingResponse, 400: ErrorResponse, 404: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse }
    },
    // `sno=1&sno=2` and the like: one sno per lookup.
    schemaErrorFormatter: () => badRequest('SNO_INVALID', 'sno must be a single positive integer')
  }, async (request, reply) => {
    const sno = parseSno(request.query.sno)
    const body = await tracking.lookup(sno)
    if (body === null) {
      await notFoundLimiter.recordNotFound(request)
      throw notFound('TRACKING_NOT_FOUND', `No order with sno ${sno}`)
    }
    // The cached string goes out as it is: no parse, no re-serialization.
    // (The typed reply expects an object; a JSON string is sent verbatim.)
    return reply.type(JSON_TYPE).send(body as never)
  })
}
