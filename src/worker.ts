import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, loadEnvFile } from './config.js'
import { createLogger } from './logger.js'
import { createDatabase } from './infra/db.js'
import { createRedis } from './infra/redis.js'
import { createS3Client, ensureBucket } from './infra/s3.js'
import { withRetry } from './infra/retry.js'
import { ReportRunner } from './reports/runner.js'
import { startReportScheduler } from './reports/scheduler.js'
import { DEFAULT_DISPATCHER, WebhookDispatcher } from './webhooks/dispatcher.js'
import { ReportSchedule } from './reports/slots.js'

/** The report worker: `node dist/worker.js` (PM2 runs exactly one). */
async function main (): Promise<void> {
  loadEnvFile()
  const config = loadConfig()
  const logger = createLogger(config.logLevel, 'worker')
  // Reports read the whole orders table: no per-statement limit here, a small pool.
  const database = createDatabase({ ...config.db, queryTimeoutMs: 0, poolSize: 4, acquireTimeoutMs: 30_000 })
  const redis = createRedis(config.redis, logger, 'worker')
  const s3 = createS3Client(config.s3)

  const controller = new AbortController()
  const running: { scheduler?: ReturnType<typeof startReportScheduler>, webhooks?: WebhookDispatcher } = {}
  closeWithGrace({ delay: config.server.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'worker stopping after an error')
    else logger.info({ signal }, 'worker stopping')
    controller.abort()
    await running.scheduler?.stop()
    await running.webhooks?.stop()
    await database.close()
    redis.disconnect()
    s3.destroy()
  })

  // Webhook deliveries from the change log (one worker leads; the others stand by).
  running.webhooks = new WebhookDispatcher(database, config.db, logger, { ...DEFAULT_DISPATCHER, retryBaseMs: config.webhooks.retryBaseMs, timeoutMs: config.webhooks.timeoutMs })
  running.webhooks.start()

  // S3 (the embedded store, under PM2) may still be starting: wait for it, patiently.
  await withRetry(async () => { await ensureBucket(s3, config.s3.bucket) }, {
    attempts: 1000,
    baseDelayMs: 500,
    maxDelayMs: 30_000,
    signal: controller.signal,
    // The first miss is the usual race at start (a warning); five misses on, about 15 s have
    // passed and it is an error, repeated every fifth attempt while it lasts.
    onRetry: (err, attempt) => {
      if (attempt === 1) logger.warn({ err, bucket: config.s3.bucket }, 'S3 not reachable yet; retrying')
      else if (attempt % 5 === 1) logger.error({ err, bucket: config.s3.bucket, attempt }, 'S3 still not reachable; retrying')
    }
  })
  if (controller.signal.aborted) return

  const schedule = new ReportSchedule(config.reports.cron, config.reports.timezone)
  const runner = new ReportRunner({ db: database.db, s3, bucket: config.s3.bucket, redis, schedule, logger })
  running.scheduler = startReportScheduler(runner, schedule, logger)
  process.send?.('ready')
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
})
