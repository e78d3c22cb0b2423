import t from 'tap'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { TestS3 } from '../helpers/s3.js'
import { createLogger } from '../../src/logger.js'
import { createS3Client, ensureBucket } from '../../src/infra/s3.js'
import { ReportRunner } from '../../src/reports/runner.js'
import { reportTick, startReportScheduler } from '../../src/reports/scheduler.js'
import { ReportSchedule, slotKeys } from '../../src/reports/slots.js'

const s3server = await TestS3.start(t)
const bucket = 'reports-scheduler'
const config = testConfig('reports_scheduler', s3server.env(bucket))
const { db } = await freshDatabase(t, config)
const s3 = createS3Client(config.s3)
t.teardown(() => s3.destroy())
await ensureBucket(s3, bucket)

t.test('on start, the worker makes the report of the latest slot it missed', async (t) => {
  const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const runner = new ReportRunner({ db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
  const scheduler = startReportScheduler(runner, schedule, createLogger('silent'))
  await scheduler.idle()
  await scheduler.stop()
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }))
  const expected = slotKeys(schedule.latest())
  t.same((listed.Contents ?? []).map((c) => c.Key).sort(), [expected.export, expected.summary])
})

t.test('a tick also makes the slot before it when that one is missing (a failed run)', async (t) => {
  const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const runner = new ReportRunner({ db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
  await reportTick(runner, schedule, new Date('2026-11-10T08:00:02Z')) // the 16:00 tick, two seconds late
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/2026-11-10/' }))
  t.same((listed.Contents ?? []).map((c) => c.Key).sort(), [
    'reports/2026-11-10/0800-orders.csv.gz', 'reports/2026-11-10/0800-summary.json',
    'reports/2026-11-10/1600-orders.csv.gz', 'reports/2026-11-10/1600-summary.json'
  ])
})
