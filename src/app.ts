import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Server } from 'node:http'
import Fastify, { LogController, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { loggerOptions } from './logger.js'
import { createDatabase } from './infra/db.js'
import { createRedis, RedisGuard } from './infra/redis.js'
import { registerErrorHandling } from './http/errors.js'
import { healthRoutes } from './http/health.js'
import { TrackingCache } from './tracking/cache.js'
import { TrackingService } from './tracking/service.js'
import { trackingRoutes } from './tracking/routes.js'
import { OrderGenerator } from './orders/generator.js'
import { FakeOrders } from './orders/service.js'
import { fakeRoutes } from './orders/routes.js'
import { createS3Client } from './infra/s3.js'
import { reportRoutes } from './reports/routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** /query lookups, and the invalidation every writer of orders calls after commit. */
    tracking: TrackingService
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Malformed requests that never reach a route still get a JSON answer with a code. */
function clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, text, code, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request Timeout', 'REQUEST_TIMEOUT', 'The request took too long to arrive']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [400, 'Bad Request', 'HEADERS_TOO_LARGE', 'The request line and headers must stay under 8 KiB']
      : [400, 'Bad Request', 'MALFORMED_REQUEST', 'The request is not valid HTTP']
  const body = JSON.stringify({ statusCode: status, error: text, message, code })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

export function serverOptions (config: Config): FastifyHttpOptions<Server> {
  return {
    logger: loggerOptions(config.logLevel, 'api'),
    // nginx logs every request; the API logs errors and slow requests (see the onResponse hook).
    logController: new LogController({ disableRequestLogging: true }),
    // nginx sends X-Request-Id; a well-formed one is kept so that both logs share it.
    requestIdHeader: false,
    genReqId: (req) => {
      const header = req.headers['x-request-id']
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID()
    },
    trustProxy: config.server.trustProxy,
    // Longer than nginx's upstream keepalive_timeout, so that nginx always closes first.
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    requestTimeout: config.server.requestTimeoutMs,
    connectionTimeout: config.server.requestTimeoutMs + 5000,
    bodyLimit: 16 * 1024,
    http: { maxHeaderSize: 8 * 1024 },
    routerOptions: { maxParamLength: 200 },
    clientErrorHandler,
    ajv: { customOptions: { coerceTypes: false } }
  }
}

/**
 * The whole API as one Fastify instance: shared clients are made here and handed to the
 * routes that need them; `close()` drains requests, then closes MySQL and Redis.
 */
export async function buildApp (config: Config): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config)).withTypeProvider<TypeBoxTypeProvider>()

  const database = createDatabase(config.db)
  const redis = createRedis(config.redis, app.log)
  const guard = new RedisGuard(redis, app.log)
  const s3 = createS3Client(config.s3)
  // Give Redis a moment to connect so the first requests already use the cache; start without it otherwise.
  app.addHook('onReady', async () => { await guard.waitUntilReady(1000) })
  app.addHook('onClose', async () => {
    await database.close()
    redis.disconnect()
    s3.destroy()
  })

  const cache = new TrackingCache(guard, app.log, {
    ttlSeconds: config.cache.ttlSeconds,
    notFoundTtlSeconds: config.cache.notFoundTtlSeconds,
    variant: config.piiMask ? ':masked' : ''
  })
  const tracking = new TrackingService(database.db, cache, { piiMask: config.piiMask })
  const fake = new FakeOrders(database.db, tracking, new OrderGenerator(config.fakeSeed))

  app.decorate('tracking', tracking)

  registerErrorHandling(app)
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    if (reply.elapsedTime > 1000) request.log.warn({ statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'slow request')
  })

  await app.register(healthRoutes, { db: database.db, redis: guard })
  await app.register(trackingRoutes, { tracking })
  await app.register(fakeRoutes, { fake, adminToken: config.adminToken })
  await app.register(reportRoutes, { s3, bucket: config.s3.bucket, adminToken: config.adminToken })
  return app
}
