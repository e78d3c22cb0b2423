import { spawn } from 'node:child_process'
import { createS3Client, ensureBucket } from '../../src/infra/s3.js'
import { exportOrders } from '../../src/reports/export.js'
import { localStoreAnswers } from '../../src/reports/local-store.js'
import { ReportSchedule } from '../../src/reports/slots.js'
import { buildSummary } from '../../src/reports/summary.js'
import { cliConfig, run, withDatabase } from '../lib/cli.js'

/**
 * One half of a report on its own, for measuring time and memory of each
 * (`/usr/bin/time -v npx tsx scripts/bench/report-part.ts summary|export`). The export goes to
 * the configured S3; with none configured, to the embedded store, started as its own process
 * if it is not running, so that its memory is not counted here.
 */
run(async () => {
  const part = process.argv[2]
  if (part !== 'summary' && part !== 'export') throw new Error('usage: report-part.ts summary|export')
  const config = cliConfig()
  await withDatabase(config, async ({ db }) => {
    const started = performance.now()
    if (part === 'summary') {
      const schedule = new ReportSchedule(config.reports.cron, config.reports.timezone)
      const slot = schedule.latest()
      const summary = await buildSummary(db, slot, schedule.previous(slot))
      console.log(`summary of ${summary.totalOrders} orders in ${Math.round(performance.now() - started)} ms`)
      return
    }
    const store = config.s3.embedded && !await localStoreAnswers(config.s3)
      ? spawn(process.execPath, ['--import', 'tsx', 'src/local-s3.ts'], { stdio: 'ignore' })
      : undefined
    try {
      const s3 = createS3Client(config.s3)
      for (let i = 0; ; i++) {
        try {
          await ensureBucket(s3, config.s3.bucket)
          break
        } catch (err) {
          if (i > 50) throw err
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
      const exportStarted = performance.now()
      const result = await exportOrders(db, s3, { bucket: config.s3.bucket, key: 'measurements/orders.csv.gz' })
      console.log(`export of ${result.bytes} gzip bytes in ${Math.round(performance.now() - exportStarted)} ms`)
      s3.destroy()
    } finally {
      store?.kill()
    }
  })
})
