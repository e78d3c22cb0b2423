import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorResponse, badRequest } from '../http/errors.js'
import { adminOnly, type Access } from '../http/auth.js'
import { FakeQuery, FakeResponse } from './schemas.js'
import { FAKE_DEFAULT, FAKE_MAX, type FakeOrders } from './service.js'

/** ?num= : default 10, above 100 is capped at 100 (documented), below 1 or not an integer is an error. */
export function parseNum (raw: string | undefined): number {
  if (raw === undefined || raw === '') return FAKE_DEFAULT
  if (!/^[+-]?\d+$/.test(raw)) throw badRequest('NUM_INVALID', `num must be an integer from 1 to ${FAKE_MAX}`)
  const value = Number(raw)
  if (value < 1) throw badRequest('NUM_INVALID', `num must be at least 1 (at most ${FAKE_MAX} are made at once)`)
  return Math.min(value, FAKE_MAX)
}

/** GET /fake?num=N — fills a test or demo environment with orders. */
export const fakeRoutes: FastifyPluginAsyncTypebox<{ fake: FakeOrders, access: Access }> = async (app, { fake, access }) => {
  app.get('/fake', {
    schema: {
      querystring: FakeQuery,
      response: { 200: FakeResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse }
    },
    schemaErrorFormatter: () => badRequest('NUM_INVALID', `num must be a single integer from 1 to ${FAKE_MAX}`),
    preHandler: adminOnly(access)
  }, async (request) => {
    return await fake.create(parseNum(request.query.num))
  })
}
