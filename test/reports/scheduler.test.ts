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

t.test('on start, the worker makes the reports of the latest slot and the one before that it missed', async (t) => {
  const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const runner = new ReportRunner({ db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
  const scheduler = startReportScheduler(runner, schedule, createLogger('silent'))
  await scheduler.idle()
  await scheduler.stop()
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }))
  const latest = slotKeys(schedule.latest())
  const before = slotKeys(schedule.previous(schedule.latest()))
  t.same((listed.Contents ?? []).map((c) => c.Key).sort(), [before.export, before.summary, latest.export, latest.summary].sort())
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

t.test('a tick that node-cron drops (a late or paused worker) is made by the worker\'s own check', async (t) => {
  const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const runner = new ReportRunner({ db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
  let clock = new Date('2026-12-01T09:30:00Z') // 17:30 in Taipei: the 16:00 slot is the latest
  const made: string[] = []
  const waiters: Array<() => void> = []
  const scheduler = startReportScheduler(runner, schedule, createLogger('silent'), {
    now: () => clock,
    checkEveryMs: 25,
    onOutcome: (outcome) => { made.push(outcome.slot); for (const wake of waiters.splice(0)) wake() }
  })
  t.teardown(async () => await scheduler.stop())
  const madeSlot = async (slot: string): Promise<boolean> => {
    const deadline = Date.now() + 30_000
    while (!made.includes(slot)) {
      if (Date.now() > deadline) return false
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 1000) })
    }
    return true
  }
  t.ok(await madeSlot('2026-12-01T16:00:00.000+08:00'), 'the latest slot, at start')

  // The clock passes 00:00 in Taipei; node-cron's tick for it never comes (it is dropped when it
  // fires late). The minute check notices the slot and makes it.
  clock = new Date('2026-12-01T16:00:07Z')
  t.ok(await madeSlot('2026-12-02T00:00:00.000+08:00'), 'the slot whose tick was dropped is made')
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/2026-12-02/' }))
  t.same((listed.Contents ?? []).map((c) => c.Key).sort(), ['reports/2026-12-02/0000-orders.csv.gz', 'reports/2026-12-02/0000-summary.json'])

  const before = made.length
  await scheduler.check()
  await scheduler.check()
  t.equal(made.length, before, 'a slot seen done is not made again')
})
