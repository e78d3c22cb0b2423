import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, loadEnvFile } from './config.js'
import { createLogger } from './logger.js'
import { createDatabase } from './infra/db.js'
import { HubDirectory } from './hubs/directory.js'
import { createTrackingCache, startCacheRelay } from './tracking/cache-setup.js'
import { FleetProcessor } from './fleet/processor.js'
import { FleetIntake } from './fleet/intake.js'
import { MqttSubscriber } from './fleet/mqtt-subscriber.js'
import { purgeTrack } from './fleet/vehicles.js'

const PURGE_EVERY_MS = 60 * 60_000

/**
 * The fleet's MQTT intake: `node dist/fleet.js` (PM2 runs exactly one: it holds the broker
 * session `MQTT_CLIENT_ID`, and one writer per vehicle keeps each vehicle's fixes in order).
 * Subscribes to `<MQTT_TOPIC_PREFIX>/+/position` at QoS 1, writes fixes in batches (position,
 * track, geofence state and the tracking events of arrivals and departures in one transaction),
 * acknowledges them after the commit, invalidates the /query cache of the parcels concerned, and
 * purges the track past FLEET_TRACK_RETENTION_DAYS every hour.
 */
async function main (): Promise<void> {
  loadEnvFile()
  const config = loadConfig()
  const logger = createLogger(config.logLevel, 'fleet')
  const fleet = config.fleet
  const database = createDatabase({ ...config.db, poolSize: 4, queryTimeoutMs: 30_000, acquireTimeoutMs: 30_000 })
  const hubs = new HubDirectory(database.db)
  const cacheStack = createTrackingCache(config, logger, 'fleet-redis')
  const invalidate = async (snos: readonly number[]): Promise<boolean> => await cacheStack.cache.invalidate(snos)
  const relay = startCacheRelay(config, logger, invalidate)
  const processor = new FleetProcessor(database.db, hubs, { defaultRadiusM: fleet.geofenceRadiusM, dwellMs: fleet.geofenceDwellS * 1000 }, invalidate, logger)
  const intake = new FleetIntake(processor, fleet, logger)
  const subscriber = new MqttSubscriber({
    url: fleet.mqttUrl,
    clientId: fleet.mqttClientId,
    topics: [`${fleet.topicPrefix}/+/position`],
    // Two batches' worth: one being written, the next filling.
    receiveMaximum: Math.min(65_535, fleet.batchMax * 2)
  })
  subscriber.on('message', (message) => intake.handle(message))
  let ready = false
  subscriber.on('connect', ({ sessionPresent }) => {
    logger.info({ url: new URL(fleet.mqttUrl).host, clientId: fleet.mqttClientId, sessionPresent }, 'fleet: subscribed to positions')
    if (!ready) {
      ready = true
      process.send?.('ready')
    }
  })
  subscriber.on('offline', () => logger.warn({ url: new URL(fleet.mqttUrl).host }, 'fleet: MQTT broker not reachable; reconnecting (check MQTT_URL)'))

  const purge = async (): Promise<void> => {
    try {
      const n = await purgeTrack(database.db, fleet.trackRetentionDays)
      if (n > 0) logger.info({ deleted: n, retentionDays: fleet.trackRetentionDays }, 'fleet: old track purged')
    } catch (err) {
      logger.warn({ err }, 'fleet: track purge failed; trying again next hour')
    }
  }
  const purgeTimer = setInterval(() => { purge().catch(() => undefined) }, PURGE_EVERY_MS)
  setTimeout(() => { purge().catch(() => undefined) }, 10_000).unref()

  closeWithGrace({ delay: config.server.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'fleet stopping after an error')
    else logger.info({ signal }, 'fleet stopping')
    clearInterval(purgeTimer)
    // Stop taking messages, write (and acknowledge) those already taken, then disconnect.
    const taken = intake.stop()
    await taken
    await subscriber.close()
    await relay.close()
    await database.close()
    cacheStack.close()
  })
  await cacheStack.guard.waitUntilReady(1000)
  subscriber.start()
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
})
