import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import type { Db } from '../../src/infra/db.js'
import { createRedis, RedisGuard } from '../../src/infra/redis.js'
import { createLogger } from '../../src/logger.js'
import { TrackingCache } from '../../src/tracking/cache.js'
import { TrackingService } from '../../src/tracking/service.js'
import { HubDirectory } from '../../src/hubs/directory.js'

/**
 * Counts the statements that reach MySQL through a Kysely instance (an observer, not a
 * stand-in); with `resultDelayMs` it also holds each result back for up to that long, as a
 * slow network or a GC pause would.
 */
export class QueryCounter implements KyselyPlugin {
  count = 0
  resultDelayMs = 0
  /** Holds every result back exactly this long (a statement that takes its time). */
  resultHoldMs = 0
  transformQuery (args: PluginTransformQueryArgs): RootOperationNode {
    return args.node
  }

  // Counted on the way back: statements compiled ahead of time skip transformQuery.
  async transformResult (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.count += 1
    if (this.resultDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * this.resultDelayMs))
    if (this.resultHoldMs > 0) await new Promise((resolve) => setTimeout(resolve, this.resultHoldMs))
    return args.result
  }
}

/** The real service on real Redis and MySQL, with a statement counter in front of MySQL. */
export function trackingService (t: Test, config: Config, db: Db, redisUrl = config.redis.url): { service: TrackingService, cache: TrackingCache, guard: RedisGuard, queries: QueryCounter } {
  const logger = createLogger('silent')
  const redis = createRedis({ ...config.redis, url: redisUrl }, logger)
  t.teardown(() => redis.disconnect())
  const guard = new RedisGuard(redis, logger)
  const cache = new TrackingCache(guard, logger, { ttlSeconds: config.cache.ttlSeconds, notFoundTtlSeconds: config.cache.notFoundTtlSeconds, variant: '' })
  const queries = new QueryCounter()
  const counted = db.withPlugin(queries)
  const service = new TrackingService(counted, new HubDirectory(db), cache, { piiMask: false, notFoundTtlMs: config.cache.notFoundTtlSeconds * 1000 })
  return { service, cache, guard, queries }
}
