import type { FastifyInstance } from 'fastify'
import { HttpError, badRequest } from './errors.js'

/** Deeper than this is no order or event (and would strain every recursive walk of it). */
export const MAX_JSON_DEPTH = 32

/** Whether JSON text nests arrays and objects deeper than `limit` (a scan, before parsing). */
export function nestsDeeper (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/**
 * JSON bodies for the plugin that calls this, and for nothing else (Fastify encapsulation: the
 * rest of the API keeps draining bodies unread). application/json only, as UTF-8; an empty or
 * malformed body, one nested too deep, or one with __proto__ / constructor.prototype keys, is a
 * 400 INVALID_JSON; another media type a 415 UNSUPPORTED_MEDIA_TYPE. The size limit is each route's `bodyLimit`
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
    if (nestsDeeper(body, MAX_JSON_DEPTH)) {
      done(badRequest('INVALID_JSON', `The body nests arrays and objects more than ${MAX_JSON_DEPTH} deep`), undefined)
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
