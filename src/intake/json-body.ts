import type { FastifyInstance } from 'fastify'
import { HttpError, badRequest } from '../http/errors.js'

/**
 * JSON bodies for the plugin that calls this, and for nothing else (Fastify encapsulation: the
 * rest of the API keeps draining bodies unread). application/json only, as UTF-8; an empty or
 * malformed body, or one with __proto__ / constructor.prototype keys, is a 400 INVALID_JSON;
 * another media type a 415 UNSUPPORTED_MEDIA_TYPE. The size limit is each route's `bodyLimit`
 * (413 BODY_TOO_LARGE).
 */
export function acceptJsonBodies (app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (typeof body !== 'string' || body.trim() === '') {
      done(badRequest('INVALID_JSON', 'The body is empty; send a JSON object'), undefined)
      return
    }
    parse(request, body, (err, value) => {
      if (err !== null) done(badRequest('INVALID_JSON', 'The body is not valid JSON'), undefined)
      else done(null, value)
    })
  })
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as Content-Type: application/json'), undefined)
  })
}
