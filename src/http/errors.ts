import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { isDatabaseUnavailable } from '../infra/db.js'

/** Every error answer: Fastify's shape plus a stable `code` that clients can branch on. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.String()
})

export class HttpError extends Error {
  readonly statusCode: number
  readonly code: string
  readonly headers: Record<string, string>

  constructor (statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    // A deliberate answer (a 404, a 429, a 503 with its reason), never logged with a stack: none
    // is taken. Collecting one was the costliest step of answering an unknown sno.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      super(message)
    } finally {
      Error.stackTraceLimit = limit
    }
    this.name = 'HttpError'
    this.statusCode = statusCode
    this.code = code
    this.headers = headers
  }
}

export const badRequest = (code: string, message: string): HttpError => new HttpError(400, code, message)
export const notFound = (code: string, message: string): HttpError => new HttpError(404, code, message)
export const unavailable = (code: string, message: string, retryAfterSeconds = 5): HttpError =>
  new HttpError(503, code, message, { 'retry-after': String(retryAfterSeconds) })

export type ErrorBody = Static<typeof ErrorResponse>

export function errorBody (statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code }
}

/** Fastify's own client errors, renamed to codes of ours. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_BODY',
  FST_ERR_BAD_URL: 'BAD_URL',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST'
}

function toBody (err: FastifyError | HttpError): ErrorBody {
  if (err instanceof HttpError) return errorBody(err.statusCode, err.code, err.message)
  // A Content-Type that does not parse is a malformed header (no route reads bodies anyway).
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errorBody(400, 'INVALID_CONTENT_TYPE', 'The Content-Type header is not a valid media type')
  if (isDatabaseUnavailable(err)) return errorBody(503, 'DATABASE_UNAVAILABLE', 'The database is not answering; try again shortly')
  const status = err.statusCode ?? 500
  if (status >= 400 && status < 500) {
    const code = FASTIFY_CODES[err.code] ?? (typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code) && !err.code.startsWith('FST_') ? err.code : 'BAD_REQUEST')
    return errorBody(status, code, err.message)
  }
  if (status === 503) return errorBody(503, 'SERVICE_UNAVAILABLE', 'The service is busy; try again shortly')
  return errorBody(500, 'INTERNAL_ERROR', 'Something went wrong on our side')
}

/** One error handler for the whole app: logs 5xx with the request, never shows internals. */
export function registerErrorHandling (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply) => {
    const body = toBody(err)
    if (err instanceof HttpError && body.statusCode >= 500) {
      // A deliberate refusal: overload is counted and summed up by the overload guard; the
      // others (a dependency away) are worth a line, but not a stack.
      if (body.code !== 'OVERLOADED') request.log.warn({ code: body.code }, body.message)
    } else if (body.statusCode >= 500) {
      request.log.error({ err, code: body.code }, 'request failed')
    } else if (body.statusCode !== 404 && body.statusCode !== 429) {
      request.log.info({ code: body.code }, body.message)
    }
    if (err instanceof HttpError) reply.headers(err.headers)
    if (body.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '5')
    return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
  })

  // Known paths asked with another method get 405 and Allow, not a 404.
  const methodsByPath: Array<{ matches: (path: string) => boolean, methods: Set<string> }> = []
  app.addHook('onRoute', (route) => {
    const url = route.url
    const matches = url.endsWith('*') ? (path: string) => path.startsWith(url.slice(0, -1)) : (path: string) => path === url
    const methods = new Set([route.method].flat())
    methodsByPath.push({ matches, methods })
  })

  // (Unknown URLs go through the app's onRequest hook, rate limit included: probing is abuse too.)
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]
    const allowed = new Set(methodsByPath.filter((r) => r.matches(path)).flatMap((r) => [...r.methods]))
    if (allowed.size > 0) {
      return reply.code(405).header('allow', [...allowed].sort().join(', '))
        .send(errorBody(405, 'METHOD_NOT_ALLOWED', `${request.method.slice(0, 20)} is not allowed here; use ${[...allowed].sort().join(' or ')}`))
    }
    return reply.code(404).send(errorBody(404, 'ROUTE_NOT_FOUND', `Route ${request.method}:${path} not found`.slice(0, 200)))
  })
}
