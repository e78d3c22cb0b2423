import { existsSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createLogger } from '../src/logger.js'
import { createRedis, RedisGuard } from '../src/infra/redis.js'
import { createS3Client, ensureBucket } from '../src/infra/s3.js'
import { localStoreAnswers, startEmbeddedStore } from '../src/reports/local-store.js'
import { ReportRunner } from '../src/reports/runner.js'
import { parseSlotTime, ReportSchedule, slotAt, slotIso, type Slot } from '../src/reports/slots.js'
import { cliConfig, run, withDatabase } from './lib/cli.js'

/**
 * npm run report                                   the latest slot's report, made now
 * npm run report -- --slot 2026-11-22T08:00        a given slot (REPORT_TIMEZONE local time), for backfills
 * npm run report -- --slot 2026-11-01T01:30-04:00  a local time that happens twice (DST), with its UTC offset
 * npm run report -- --if-missing                   leave an existing report alone
 */
function parseSlot (value: string, schedule: ReportSchedule): Slot {
  const at = parseSlotTime(value, schedule.timezone)
  if (!schedule.isSlot(at)) {
    const before = schedule.latest(at)
    throw new Error(`${value} is not a slot of REPORT_CRON "${schedule.cron}" in ${schedule.timezone} (the slot before it is ${slotIso(before)})`)
  }
  return slotAt(at, schedule.timezone)
}

run(async () => {
  const { values } = parseArgs({ options: { slot: { type: 'string' }, 'if-missing': { type: 'boolean', default: false } } })
  const config = cliConfig()
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'report')
  const schedule = new ReportSchedule(config.reports.cron, config.reports.timezone)
  const slot = values.slot === undefined ? schedule.latest() : parseSlot(values.slot, schedule)

  // With no S3 configured and no store running (npm start not up), bring the embedded one up for this run.
  const store = config.s3.embedded && !await localStoreAnswers(config.s3) ? await startEmbeddedStore(config.s3) : undefined
  const s3 = createS3Client(config.s3)
  const redis = createRedis(config.redis, logger, 'report-cli')
  try {
    await ensureBucket(s3, config.s3.bucket)
    await new RedisGuard(redis, logger).waitUntilReady(1000)
    const outcome = await withDatabase(config, async ({ db }) =>
      await new ReportRunner({ db, s3, bucket: config.s3.bucket, redis, schedule, logger }).run(slot, { force: values['if-missing'] !== true }))
    if (outcome.status === 'locked') throw new Error(`another worker is making the ${outcome.slot} report right now`)
    console.log(`report for ${outcome.slot}${outcome.status === 'exists' ? ' already exists' : ` made in ${(outcome.ms / 1000).toFixed(1)} s`}`)
    console.log(`  summary: s3://${config.s3.bucket}/${outcome.keys.summary}`)
    console.log(`  export:  s3://${config.s3.bucket}/${outcome.keys.export}${outcome.exportBytes === undefined ? '' : ` (${outcome.exportBytes} bytes)`}`)
    if (config.s3.embedded) {
      // s3rver keeps each object in a file of its own, named after the key.
      const file = (key: string): string => path.resolve(config.s3.localDirectory, config.s3.bucket, `${key}._S3rver_object`)
      for (const key of [outcome.keys.summary, outcome.keys.export]) {
        if (existsSync(file(key))) console.log(`  file:    ${file(key)}`)
      }
    }
    const api = `http://${config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host}:${config.server.port}`
    console.log('  download (with the API running):')
    console.log(`    curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -o ${path.basename(outcome.keys.summary)} ${api}/${outcome.keys.summary}`)
    console.log(`    curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -o ${path.basename(outcome.keys.export)} ${api}/${outcome.keys.export}`)
    if (outcome.summary !== undefined) console.log(`  orders: ${outcome.summary.totalOrders}, ${JSON.stringify(outcome.summary.trackingSummary)}`)
  } finally {
    redis.disconnect()
    s3.destroy()
    await store?.close()
  }
})
