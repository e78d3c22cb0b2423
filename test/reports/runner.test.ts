import t, { type Test } from 'tap'
import { gunzipSync } from 'node:zlib'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'
import { TestS3 } from '../helpers/s3.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { createLogger } from '../../src/logger.js'
import { createRedis, RedisGuard } from '../../src/infra/redis.js'
import { createS3Client, ensureBucket } from '../../src/infra/s3.js'
import { ReportRunner, type RunnerDeps } from '../../src/reports/runner.js'
import { ReportSchedule, slotId, slotKeys, type Slot } from '../../src/reports/slots.js'
import { LeaseLostError } from '../../src/reports/lock.js'
import type { Config } from '../../src/config.js'

const s3server = await TestS3.start(t)
const bucket = 'reports-runner'
const config: Config = testConfig('reports_runner', s3server.env(bucket))
const { db } = await freshDatabase(t, config)
const admin = await clearKeys(t, config)
const logger = createLogger((process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent')
const s3 = createS3Client(config.s3)
t.teardown(() => s3.destroy())
await ensureBucket(s3, bucket)
await bulkLoadOrders(db, { count: 300, seed: 5 })
const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')

async function runner (extra: Partial<RunnerDeps> = {}): Promise<ReportRunner> {
  const redis = createRedis(config.redis, logger, 'runner-test')
  t.teardown(() => redis.disconnect())
  await new RedisGuard(redis, logger).waitUntilReady(2000)
  return new ReportRunner({ db, s3, bucket, redis, schedule, logger, retry: { baseDelayMs: 100, maxDelayMs: 500, attempts: 20 }, ...extra })
}

async function keys (client: S3Client, prefix: string): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
  return (page.Contents ?? []).map((c) => c.Key as string).sort()
}

async function csvRows (key: string): Promise<string[]> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  const text = gunzipSync(Buffer.from(await object.Body!.transformToByteArray())).toString('utf8')
  return text.trimEnd().split('\n')
}

t.test('two workers racing for one slot: one run, one pair of objects', async (t) => {
  const slot = schedule.latest(new Date('2026-11-22T01:00:00Z'))
  const [a, b] = [await runner(), await runner()]
  const outcomes = await Promise.all([a.run(slot), b.run(slot)])
  const statuses = outcomes.map((o) => o.status).sort()
  t.equal(statuses.filter((s) => s === 'done').length, 1, `exactly one run made it (${statuses.join(', ')})`)
  t.ok(statuses.every((s) => ['done', 'locked', 'exists'].includes(s)))
  t.same(await keys(s3, 'reports/2026-11-22/'), ['reports/2026-11-22/0800-orders.csv.gz', 'reports/2026-11-22/0800-summary.json'])

  const rows = await csvRows(slotKeys(slot).export)
  t.equal(rows[0], 'sno,status,hub,estimated_delivery,updated')
  t.equal(rows.length, 301, 'one row per order')
  t.match(rows[1], /^1,(Created|Package Received|In Transit|Out for Delivery|Delivery Attempted|Delivered|Returned to Sender|Exception),\p{Script=Han}+物流中心,\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2}T[\d:.]+Z$/u)

  const again = await a.run(slot)
  t.equal(again.status, 'exists', 'a rerun finds the report and does nothing')
  const forced = await a.run(slot, { force: true })
  t.equal(forced.status, 'done', 'a forced rerun overwrites')
  t.equal((await keys(s3, 'reports/2026-11-22/')).length, 2, 'still one pair: nothing duplicated')
})

t.test('DST fall-back: both midnights of a Havana night get a report of their own', async (t) => {
  const havana = new ReportSchedule('0 0,8,16 * * *', 'America/Havana')
  const r = await runner({ schedule: havana })
  const second = havana.latest(new Date('2026-11-01T05:10:00Z')) // 00:10 CST, after the clocks went back
  const first = havana.previous(second) // 00:00 CDT, an hour earlier
  t.equal((await r.run(first)).status, 'done')
  t.equal((await r.run(second)).status, 'done', 'the second midnight is not taken for the first')
  t.same(await keys(s3, 'reports/2026-11-01/'), [
    'reports/2026-11-01/0000-0400-orders.csv.gz', 'reports/2026-11-01/0000-0400-summary.json',
    'reports/2026-11-01/0000-0500-orders.csv.gz', 'reports/2026-11-01/0000-0500-summary.json'
  ])
  const summary = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: slotKeys(second).summary }))).Body!.transformToString()) as { slot: string, activity: { from: string } }
  t.equal(summary.slot, '2026-11-01T00:00:00.000-05:00')
  t.equal(summary.activity.from, '2026-11-01T00:00:00.000-04:00', 'its window is the hour since the first midnight')
})

/**
 * Runner A's lease is lost (its key deleted, as an expiry would) right before A sends its write
 * of `key`; runner B then takes the lease and makes the whole report; then A's write goes on.
 */
async function leaseTakenBeforeWrite (t: Test, slot: Slot, key: string): Promise<{ a: Promise<unknown>, b: Awaited<ReturnType<ReportRunner['run']>>, etags: { summary?: string, export?: string } }> {
  const clientA = createS3Client(config.s3)
  t.teardown(() => clientA.destroy())
  let b: Awaited<ReturnType<ReportRunner['run']>> | undefined
  let etags: { summary?: string, export?: string } = {}
  const etag = async (k: string): Promise<string | undefined> => (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ETag
  clientA.middlewareStack.add((next, context) => async (args) => {
    const input = args.input as { Key?: string }
    if (b === undefined && input.Key === key && ['PutObjectCommand', 'CreateMultipartUploadCommand', 'CompleteMultipartUploadCommand'].includes(context.commandName ?? '')) {
      t.equal(await admin.del(`${config.redis.keyPrefix}reports:lock:${slotId(slot)}`), 1, 'A\'s lease key is gone')
      b = await (await runner()).run(slot, { force: true })
      etags = { summary: await etag(slotKeys(slot).summary), export: await etag(slotKeys(slot).export) }
    }
    return await next(args)
  }, { step: 'initialize', priority: 'high', name: 'takeLeaseBeforeWrite' })
  const a = (await runner({ s3: clientA })).run(slot, { force: true })
  await a.catch(() => {})
  if (b === undefined) throw new Error('A never reached the write')
  return { a, b, etags }
}

t.test('a run whose lease is lost writes nothing more: the other runner\'s summary stands', async (t) => {
  const slot = schedule.latest(new Date('2026-11-26T01:00:00Z'))
  const { a, b, etags } = await leaseTakenBeforeWrite(t, slot, slotKeys(slot).summary)
  await t.rejects(a, LeaseLostError, 'A stops at its summary')
  t.equal(b.status, 'done', 'B made the report')
  t.equal(await admin.exists(`${config.redis.keyPrefix}reports:lock:${slotId(slot)}`), 0, 'B released its lease; A did not touch it')
  const stored = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: slotKeys(slot).summary }))).Body!.transformToString()) as { created_at: string }
  t.equal(stored.created_at, b.summary?.created_at, 'the summary is B\'s')
  t.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: slotKeys(slot).summary }))).ETag, etags.summary)
})

t.test('a run whose lease is lost mid-export does not overwrite the other runner\'s export', async (t) => {
  const slot = schedule.latest(new Date('2026-11-27T01:00:00Z'))
  const { a, b, etags } = await leaseTakenBeforeWrite(t, slot, slotKeys(slot).export)
  await t.rejects(a, LeaseLostError, 'A stops before its export is stored')
  t.equal(b.status, 'done')
  t.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: slotKeys(slot).export }))).ETag, etags.export, 'the export is B\'s')
  t.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: slotKeys(slot).summary }))).ETag, etags.summary, 'and so is the summary')
  t.same(await s3server.pendingUploads(bucket), [], 'no upload left behind')
})

t.test('catch-up after downtime makes the latest missing slot, once', async (t) => {
  const r = await runner()
  const now = new Date('2026-11-23T09:30:00Z') // 17:30 in Taipei: the 16:00 slot is due
  const made = await r.catchUp(now)
  t.equal(made?.status, 'done')
  t.equal(made?.slot, '2026-11-23T16:00:00.000+08:00')
  t.equal(await r.catchUp(now), null, 'nothing to do the second time')
})

t.test('S3 down when the run starts: retried with backoff, lands when S3 returns', async (t) => {
  const r = await runner()
  const slot = schedule.latest(new Date('2026-11-24T01:00:00Z'))
  await s3server.stop()
  const run = r.run(slot)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await s3server.start()
  const outcome = await run
  t.equal(outcome.status, 'done')
  t.same(await keys(s3, 'reports/2026-11-24/'), ['reports/2026-11-24/0800-orders.csv.gz', 'reports/2026-11-24/0800-summary.json'])
})

t.test('a 100k-order export: S3 stopped and restarted mid-upload, bounded memory, no stray uploads', async (t) => {
  await bulkLoadOrders(db, { count: 99_700, seed: 6, batchSize: 5000 })
  // Level 0 makes the object ~7 MB, so that it goes up as a real multipart upload (5 MiB parts).
  const slot = schedule.latest(new Date('2026-11-25T01:00:00Z'))

  // Live heap (after a full GC) sampled while work runs, against the same rows held at once.
  const gc = globalThis.gc as (() => void)
  t.type(gc, 'function', 'tests run with --expose-gc')
  const held: unknown[] = []
  const liveHeap = (): number => { gc(); return process.memoryUsage().heapUsed }
  const heapGrowth = async (work: () => Promise<unknown>): Promise<number> => {
    const baseline = liveHeap()
    let peak = baseline
    const sampler = setInterval(() => { peak = Math.max(peak, liveHeap()) }, 100)
    try {
      held.push(await work()) // still referenced while measured
      peak = Math.max(peak, liveHeap())
      held.length = 0
    } finally {
      clearInterval(sampler)
    }
    return (peak - baseline) / 1024 / 1024
  }
  const allAtOnce = await heapGrowth(async () => await db.selectFrom('orders').select(['sno', 'status', 'location_id', 'estimated_delivery', 'last_event_at']).execute())

  // The runner's client stops S3 (SIGKILL) right before it sends the first part: the multipart
  // upload has been created and is pending, whatever the machine's speed. S3 comes back a second
  // later; the part fails meanwhile and the run's retries carry it through.
  const runnerS3 = createS3Client(config.s3)
  t.teardown(() => runnerS3.destroy())
  let partsSeen = 0
  let restarted: Promise<void> | undefined
  runnerS3.middlewareStack.add((next, context) => async (args) => {
    if (restarted === undefined && context.commandName === 'UploadPartCommand') {
      partsSeen = (await s3server.pendingUploads(bucket)).length
      await s3server.stop()
      restarted = new Promise((resolve) => setTimeout(resolve, 1000)).then(async () => await s3server.start())
    }
    return await next(args)
  }, { step: 'initialize', name: 'stopS3BeforeFirstPart' })
  const r = await runner({ gzipLevel: 0, s3: runnerS3 })

  let outcome: Awaited<ReturnType<ReportRunner['run']>> | undefined
  const streamed = await heapGrowth(async () => {
    outcome = await r.run(slot)
    await restarted
  })
  if (outcome === undefined) throw new Error('no outcome')

  t.ok(partsSeen > 0, 'S3 was stopped in the middle of a multipart upload')
  t.equal(outcome.status, 'done', 'the report still landed')
  const rows = await csvRows(slotKeys(slot).export)
  t.equal(rows.length, 100_001, 'every order, once')
  t.equal(new Set(rows.slice(1).map((row) => row.split(',')[0])).size, 100_000, 'no row twice')
  t.same(await s3server.pendingUploads(bucket), [], 'no multipart upload left behind')
  t.comment(`heap growth: streamed export ${streamed.toFixed(1)} MB, the same rows held at once ${allAtOnce.toFixed(1)} MB`)
  t.ok(streamed < allAtOnce / 2, `the export streams (heap +${streamed.toFixed(1)} MB against +${allAtOnce.toFixed(1)} MB)`)
})
