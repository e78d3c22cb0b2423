import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, loadEnvFile } from './config.js'
import { createLogger } from './logger.js'
import { createDatabase } from './infra/db.js'
import { createRedis, RedisGuard } from './infra/redis.js'
import { HubDirectory } from './hubs/directory.js'
import { TrackingCache } from './tracking/cache.js'
import { Writer } from './writes/writer.js'
import { IngestConsumer } from './ingest/consumer.js'
import { loadParcels } from './fleet/loading.js'
import { hostname } from 'node:os'

/** The RabbitMQ ingestion consumer: `node dist/ingest.js` (PM2 runs one, in fork mode). */
async function main (): Promise<void> {
  loadEnvFile()
  const config = loadConfig()
  const logger = createLogger(config.logLevel, 'ingest')
  // Two batches are written at once (src/ingest/consumer.ts): a small pool with one connection
  // to spare; a batch waits for a connection rather than failing fast.
  const database = createDatabase({ ...config.db, poolSize: 3, acquireTimeoutMs: 5000 })
  const redis = createRedis(config.redis, logger, 'ingest')
  const guard = new RedisGuard(redis, logger)
  const cache = new TrackingCache(guard, logger, {
    ttlSeconds: config.cache.ttlSeconds,
    notFoundTtlSeconds: config.cache.notFoundTtlSeconds,
    variant: config.piiMask ? ':masked' : ''
  })
  const hubs = new HubDirectory(database.db)
  const writer = new Writer(database.db, {
    hubExists: async (id) => await hubs.has(id),
    // What does not reach Redis here is sent again by the change relay from the change log;
    // a failure after the commit must not hold back the acknowledgement.
    afterCommit: async (snos) => { await cache.invalidate(snos).catch((err: unknown) => { logger.warn({ err }, 'cache invalidation failed') }) }
  })
  const consumer = new IngestConsumer(config.amqp, {
    applyEvents: async (events) => await writer.applyEvents(events),
    loadParcels: async (body) => await loadParcels(database.db, body, { hubExists: async (id) => await hubs.has(id) })
  }, logger)
  // The consumer's counters, for the API's /metrics (a hash of its own, listed in a set).
  const processName = `${hostname()}:${process.pid}`
  const publishCounters = setInterval(() => {
    consumer.counters.publish(redis, processName).catch(() => {})
  }, 5000).unref()

  closeWithGrace({ delay: config.server.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'ingest stopping after an error')
    else logger.info({ signal }, 'ingest stopping')
    clearInterval(publishCounters)
    await consumer.stop()
    await database.close()
    redis.disconnect()
  })

  await consumer.start()
  process.send?.('ready')
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
})
