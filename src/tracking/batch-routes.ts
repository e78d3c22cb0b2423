import type { FastifyPluginAsync } from 'fastify'
import { badRequest } from '../http/errors.js'
import { acceptJsonBodies } from '../http/json-body.js'
import type { NotFoundLimiter, RequestLimiter } from '../http/rate-limit.js'
import { parseSno } from './sno.js'
import type { TrackingService } from './service.js'

export const BATCH_MAX = 100

function parseSnos (body: unknown): number[] {
  const snos = (body as { snos?: unknown } | null)?.snos
  if (!Array.isArray(snos) || snos.length === 0) throw badRequest('SNOS_REQUIRED', 'Send {"snos": [1, 2, …]} with 1 to 100 order numbers')
  if (snos.length > BATCH_MAX) throw badRequest('TOO_MANY_SNOS', `At most ${BATCH_MAX} order numbers in one batch`)
  return [...new Set(snos.map((raw) => {
    if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw > 0) return raw
    if (typeof raw === 'string' && raw !== '') return parseSno(raw)
    throw badRequest('SNO_INVALID', 'Every sno must be a positive integer')
  }))]
}

/**
 * POST /query {"snos": [...]}: up to 100 lookups in one call, each through the same cache path as
 * GET /query. Each lookup counts against the client's rate limit, and the unknown ones against
 * its unknown-sno budget; a batch that would go over it is refused whole (it says nothing).
 */
export const batchRoutes: FastifyPluginAsync<{ tracking: TrackingService, limiter: RequestLimiter, notFound: NotFoundLimiter }> = async (app, { tracking, limiter, notFound }) => {
  acceptJsonBodies(app)
  app.post('/query', { bodyLimit: 8 * 1024 }, async (request, reply) => {
    const snos = parseSnos(request.body)
    const limited = limiter.charge(request, snos.length - 1)
    if (limited !== undefined) throw limited
    notFound.checkBudget(request)
    const bodies = await Promise.all(snos.map(async (sno) => await tracking.lookup(sno)))
    const missing = snos.filter((_, i) => bodies[i] === null)
    notFound.recordNotFound(request, missing.length)
    const found = bodies.filter((b) => b !== null).map((b) => b.toString())
    // The stored answers go out as they are, inside the batch's envelope.
    reply.type('application/json; charset=utf-8')
    return `{"data":[${found.join(',')}],"not_found":${JSON.stringify(missing)}}`
  })
}
