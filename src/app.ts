import { createServer, type Server, type ServerOptions } from 'node:http'
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import Fastify, { LogController, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { LazyChildLogger, loggerOptions } from './logger.js'
import { sql } from 'kysely'
import { createDatabase, unreachableMessage } from './infra/db.js'
import { badRequest, registerErrorHandling, unavailable } from './http/errors.js'
import { healthRoutes } from './http/health.js'
import { OverloadGuard } from './http/overload.js'
import { requestIdOf, SECURITY_HEADERS } from './http/response-headers.js'
import { trustProxyFunction, type TrustProxy } from './http/client-address.js'
import { CHARGED, QueryHitShortcut, type ChargedRequest } from './tracking/hit-shortcut.js'
import { registerDocs } from './http/docs.js'
import { registerMetrics } from './http/metrics.js'
import { NotFoundLimiter, RequestLimiter, SharedCounter } from './http/rate-limit.js'
import { createTrackingCache, startCacheRelay } from './tracking/cache-setup.js'
import type { RedisGuard } from './infra/redis.js'
import { TrackingService } from './tracking/service.js'
import { NearCache } from './tracking/near-cache.js'
import { HubDirectory } from './hubs/directory.js'
import { trackingRoutes } from './tracking/routes.js'
import { batchRoutes } from './tracking/batch-routes.js'
import { webhookRoutes } from './webhooks/routes.js'
import { FakeOrders } from './orders/service.js'
import { fakeRoutes } from './orders/routes.js'
import { reportRoutes } from './reports/routes.js'
import { Writer } from './writes/writer.js'
import { ChangeFeed } from './live/change-feed.js'
import { liveRoutes } from './live/routes.js'
import { Access } from './http/auth.js'
import { intakeRoutes } from './intake/routes.js'
import { fleetRoutes } from './fleet/routes.js'
import { pagesRoutes } from './pages/routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** /query lookups, and the invalidation every writer of orders calls after commit. */
    tracking: TrackingService
    /** The one write path for orders and events (src/writes/writer.ts). */
    writer: Writer
    hubs: HubDirectory
    /** Answers /query from the near cache before Fastify sees the request (src/tracking/hit-shortcut.ts). */
    hitShortcut: QueryHitShortcut
    /** Requests per client in the rate limit's window, shared through Redis (for tests and diagnostics). */
    requestCounts: SharedCounter
    /** Load shedding; `sampled` tells when its measure means something (PM2's ready waits for it). */
    overload: OverloadGuard
    /** Logs, once, which dependency is unreachable and which variable to check (for start-up). */
    reportDependencies: () => Promise<void>
  }
}

/** The API's version, as package.json says. */
const API_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version

/** The longest URL (path and query string) the API reads; nginx's own limit is 8 KiB. */
export const MAX_URL_LENGTH = 2048

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

/**
 * Fastify's options. The HTTP server is made here (Fastify sets the same timeouts on the one it
 * makes) so that a /query answered from this process's near cache can be sent before Fastify
 * sees the request (src/tracking/hit-shortcut.ts).
 */
export function serverOptions (config: Config, shortcut: QueryHitShortcut, trust: TrustProxy | false, logStream?: Writable): FastifyHttpOptions<Server> {
  return {
    // As Fastify's own getServerInstance, with these options after Fastify's defaults. (With a
    // server factory, Fastify listens on one address only: HOST=localhost is its first address.)
    serverFactory: (handler, factoryOptions) => {
      const options = factoryOptions as { http?: ServerOptions, keepAliveTimeout: number, requestTimeout: number, maxRequestsPerSocket: number }
      const server = createServer(options.http ?? {}, (req, res) => { if (!shortcut.handle(req, res)) handler(req, res) })
      // One idle timeout per connection, set when it opens and pushed back by every byte either
      // way: it ends an idle keep-alive connection, and one whose client stops reading or sending
      // mid-request. Node's own keep-alive timer (off here) and server timeout would otherwise be
      // made and cleared anew for every request, which cost a cache hit 3-4 % of its rate.
      server.keepAliveTimeout = 0
      server.setTimeout(options.keepAliveTimeout)
      server.requestTimeout = options.requestTimeout
      if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket
      return server
    },
    logger: logStream === undefined ? loggerOptions(config.logLevel, 'api') : { ...loggerOptions(config.logLevel, 'api'), transport: undefined, stream: logStream },
    // nginx logs every request; the API logs errors and slow requests (see the onResponse hook).
    logController: new LogController({ disableRequestLogging: true }),
    // nginx sends X-Request-Id; a well-formed one is kept so that both logs share it.
    requestIdHeader: false,
    genReqId: requestIdOf,
    trustProxy: trust,
    childLoggerFactory: (logger, bindings, options) => new LazyChildLogger(logger as never, bindings, options as Record<string, unknown>) as never,
    // The connection's idle timeout (see serverFactory): longer than nginx's upstream
    // keepalive_timeout (60 s), so that nginx always closes first; the request timeout (to receive
    // a request) is shorter than nginx's proxy_read_timeout (35 s), so the API answers first.
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    // While draining, a request that arrives on a connection already open (nginx reuses its
    // upstream connections) is answered as usual, with Connection: close, rather than refused
    // with a 503 that nginx would pass on during every PM2 reload. MySQL and Redis stay open until
    // the last connection has closed.
    return503OnClosing: false,
    requestTimeout: config.server.requestTimeoutMs,
    // The API takes no bodies (nginx: client_max_body_size 16k) and small headers (8 KiB, as nginx).
    bodyLimit: 16 * 1024,
    // Fastify's 10 s for a plugin or onReady hook ran out for processes started together on two
    // busy cores (their modules still loading); a hang still fails the start, after a minute.
    pluginTimeout: 60_000,
    http: { maxHeaderSize: 8 * 1024 },
    routerOptions: { maxParamLength: 200 },
    clientErrorHandler,
    ajv: { customOptions: { coerceTypes: false } }
  }
}

/**
 * A Redis database number the server lacks (REDIS_URL .../40 on a server with 16) fails the
 * client's SELECT, and the client then carries on in database 0, shared with whatever else uses
 * it. Refused at start-up instead.
 */
async function refuseMissingRedisDatabase (redis: RedisGuard['redis'], url: string): Promise<void> {
  const wanted = Number(new URL(url).pathname.replace(/^\//, '') || '0')
  if (wanted === 0 || redis.status !== 'ready' || redis.isCluster) return
  const info = await redis.call('CLIENT', 'INFO').catch(() => undefined)
  const db = typeof info === 'string' ? /\bdb=(\d+)/.exec(info)?.[1] : undefined
  if (db !== undefined && Number(db) !== wanted) {
    throw new Error(`REDIS_URL names database ${wanted}, which this Redis server does not have (see its "databases" setting); the cache would silently use database ${db}`)
  }
}

export interface AppOptions {
  /** Where log lines go (stdout by default); tests read them. */
  logStream?: Writable
}

/**
 * The whole API as one Fastify instance: shared clients are made here and handed to the
 * routes that need them; `close()` drains requests, then closes MySQL, Redis and S3.
 */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const shortcut = new QueryHitShortcut()
  // One TRUST_PROXY function for Fastify's request.ip and for the shortcut, so that both agree.
  const trust = trustProxyFunction(config.server.trustProxy)
  const app = Fastify(serverOptions(config, shortcut, trust, options.logStream)).withTypeProvider<TypeBoxTypeProvider>()
  app.decorate('hitShortcut', shortcut)

  const database = createDatabase(config.db)
  const { guard, cache, epoch, close: closeCache } = createTrackingCache(config, app.log)
  // On a Redis Cluster the near cache stays off: invalidations come per master, and a master
  // this process does not yet know of (slots moving to a new node) could change a key unheard.
  const cluster = config.redis.clusterNodes.length > 0
  if (cluster && config.cache.nearEntries > 0) app.log.info('near cache off: Redis Cluster in use (REDIS_CLUSTER_NODES)')
  const near = config.cache.nearEntries > 0 && !cluster
    ? new NearCache({ url: config.redis.url, prefix: `${config.redis.keyPrefix}track:v1`, maxEntries: config.cache.nearEntries, ttlMs: config.cache.nearTtlSeconds * 1000 }, app.log)
    : undefined
  const hubs = new HubDirectory(database.db)
  const tracking = new TrackingService(database.db, hubs, cache, { piiMask: config.piiMask, notFoundTtlMs: config.cache.notFoundTtlSeconds * 1000 }, near)
  const writer = new Writer(database.db, {
    hubExists: async (id) => await hubs.has(id),
    afterCommit: async (snos) => { await tracking.invalidate(snos) }
  })
  const fake = new FakeOrders(writer, hubs, config.fakeSeed)
  const requests = new SharedCounter(guard, 'all')
  const notFound = new SharedCounter(guard, 'nf')
  app.decorate('tracking', tracking)
  app.decorate('requestCounts', requests)
  app.decorate('writer', writer)
  app.decorate('hubs', hubs)
  app.decorate('reportDependencies', async () => {
    try {
      await sql`SELECT 1`.execute(database.db)
    } catch (err) {
      app.log.error(unreachableMessage(config.db, err) + '; answering 503 until it is back')
    }
    if (guard.redis.status !== 'ready' && cluster) {
      app.log.warn(`Redis Cluster at ${config.redis.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')} is not reachable: serving without the cache until it is back (check REDIS_CLUSTER_NODES)`)
    } else if (guard.redis.status !== 'ready') {
      const url = new URL(config.redis.url)
      app.log.warn(`Redis at ${url.hostname}:${url.port || 6379} is not reachable: serving without the cache until it is back (check REDIS_URL)`)
    }
  })

  // Give Redis a moment to connect so the first requests already use the cache; start without it otherwise.
  app.addHook('onReady', async () => {
    await guard.waitUntilReady(1000)
    await refuseMissingRedisDatabase(guard.redis, config.redis.url)
    await epoch.ready(1000)
  })
  // Replays committed changes whose invalidation may not have landed (a crash, Redis away).
  let relay: ReturnType<typeof startCacheRelay> | undefined
  app.addHook('onReady', async () => { relay = startCacheRelay(config, app.log, async (snos) => await tracking.invalidate(snos)) })
  // While draining, close keep-alive connections as soon as they fall idle (Node closes only
  // those idle at the start), so the process exits once the last in-flight request is answered.
  let drain: NodeJS.Timeout | undefined
  app.addHook('preClose', async () => {
    shortcut.detach()
    drain = setInterval(() => app.server.closeIdleConnections(), 50).unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(drain)
    requests.close()
    notFound.close()
    await near?.close()
    await relay?.close()
    await database.close()
    closeCache()
  })

  // No route takes a body: whatever is sent is drained unread (nginx caps it at 16 KiB), so a
  // stray POST gets its 405 rather than a parser error.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.resume()
    done(null, undefined)
  })
  // Overload: answer 503 at once rather than let every request time out.
  const overload = new OverloadGuard({ maxEventLoopDelayMs: config.overload.maxEventLoopDelayMs, maxHeapUsedBytes: config.overload.maxHeapUsedMb * 1024 * 1024 }, app.log)
  app.decorate('overload', overload)
  overload.start()
  app.addHook('onClose', async () => { overload.stop() })
  const shedding = overload.enabled
  // The one per-request hook: headers, the URL limit, the rate limit and the overload guard,
  // without a promise (a second hook cost a hook-runner pass per request on the hit path).
  const limiter = new RequestLimiter(requests, config.rateLimit.perMinute)
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS).header('x-request-id', request.id)
    // A /query the shortcut looked at and handed on has had its rate limit counted there.
    const charged = (request.raw as ChargedRequest)[CHARGED]
    if (request.url.length > MAX_URL_LENGTH) done(badRequest('URL_TOO_LONG', `The URL must stay under ${MAX_URL_LENGTH} characters`))
    else done((charged !== undefined ? charged.refusal : limiter.check(request)) ?? (shedding && overload.refuse() ? unavailable('OVERLOADED', 'The service is overloaded; try again shortly', 5) : undefined))
  })
  // nginx logs every request with its time; at debug level the API does too.
  if (['debug', 'trace'].includes(config.logLevel)) {
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug({ req: request, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request completed')
    })
  }

  registerErrorHandling(app)
  await registerDocs(app, API_VERSION)
  const access = new Access({ adminToken: config.adminToken, ingestTokens: config.ingestTokens })
  const durations = registerMetrics(app, { db: database.db, guard, tracking, shortcut, access, gc: config.metricsGc })

  await app.register(healthRoutes, { db: database.db, redis: guard })
  const feed = new ChangeFeed(config.db, app.log, config.live.pollMs)
  app.addHook('onClose', async () => { await feed.stop() })
  await app.register(liveRoutes, { db: database.db, tracking, feed, heartbeatMs: config.live.heartbeatMs, maxStreamsPerClient: config.live.maxStreamsPerClient, maxStreams: config.live.maxStreams })
  const notFoundLimiter = new NotFoundLimiter(notFound, config.rateLimit.notFoundPerMinute)
  await app.register(trackingRoutes, { tracking, notFound: notFoundLimiter })
  await app.register(batchRoutes, { tracking, limiter, notFound: notFoundLimiter })
  await app.register(fakeRoutes, { fake, access })
  await app.register(webhookRoutes, { db: database.db, access })
  await app.register(reportRoutes, { s3: config.s3, access })
  await app.register(intakeRoutes, { db: database.db, access })
  await app.register(fleetRoutes, { db: database.db, access, fleet: config.fleet })
  await app.register(pagesRoutes, { s3: config.s3, db: database.db, live: config.live })
  // At debug level every request is logged, so every one goes through the hooks.
  if (!['debug', 'trace'].includes(config.logLevel)) {
    const parts = { tracking, limiter, notFound: notFoundLimiter, overloaded: (now: number) => overload.overloaded(now), trust, observe: durations.observer('/query', 'GET', 200) }
    app.addHook('onReady', async () => { shortcut.attach(parts) })
  }
  return app
}
