import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { Type } from 'typebox'
import type { Db } from '../infra/db.js'
import type { RedisGuard } from '../infra/redis.js'
import { ErrorResponse } from './errors.js'

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
  mysql: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  redis: Type.Union([Type.Literal('up'), Type.Literal('down')])
})

/** `GET /` is the original's liveness answer; `GET /health` says what the service can reach. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Db, redis: RedisGuard }> = async (app, { db, redis }) => {
  app.get('/', { schema: { response: { 200: Type.String() } }, config: { rateLimit: false } }, async (_request, reply) => {
    return reply.type('text/plain; charset=utf-8').send('OK')
  })

  // 503 is either "MySQL is down" (Health) or an overload refusal (the error shape).
  app.get('/health', { schema: { response: { 200: Health, 503: Type.Union([Health, ErrorResponse]) } }, config: { rateLimit: false } }, async (_request, reply) => {
    const [mysql, cache] = await Promise.all([
      sql`SELECT 1`.execute(db).then(() => 'up' as const, () => 'down' as const),
      redis.attempt(async (r) => await r.ping()).then((pong) => pong === 'PONG' ? 'up' as const : 'down' as const)
    ])
    const status = mysql === 'down' ? 'down' : cache === 'down' ? 'degraded' : 'ok'
    return reply.code(mysql === 'up' ? 200 : 503).send({ status, mysql, redis: cache })
  })
}
