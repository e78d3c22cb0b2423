import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { buildTestApp } from '../helpers/app.js'
import { TestS3 } from '../helpers/s3.js'
import { ERROR_EXAMPLE, shapeDifferences } from '../helpers/contract.js'
import { createLogger } from '../../src/logger.js'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { createS3Client, ensureBucket } from '../../src/infra/s3.js'
import { ReportRunner } from '../../src/reports/runner.js'
import { ReportSchedule } from '../../src/reports/slots.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'

const s3server = await TestS3.start(t)
const bucket = 'reports-routes'
const token = 'test-admin-token-0123456789'
const { app, config, database } = await buildTestApp(t, 'reports_routes', { ...s3server.env(bucket), ADMIN_TOKEN: token })
const auth = { authorization: `Bearer ${token}` }
const run = promisify(execFile)

const s3 = createS3Client(config.s3)
t.teardown(() => s3.destroy())
await ensureBucket(s3, bucket)
await bulkLoadOrders(database.db, { count: 50, seed: 1 })
const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
const runner = new ReportRunner({ db: database.db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
for (const at of ['2026-11-21T01:00:00Z', '2026-11-22T09:00:00Z', '2026-11-22T01:00:00Z']) {
  await runner.run(schedule.latest(new Date(at)))
}

t.test('GET /reports lists reports newest first, with slot, key and size', async (t) => {
  const res = await app.inject({ url: '/reports', headers: auth })
  t.equal(res.statusCode, 200)
  const { reports } = res.json()
  t.same(reports.map((r: { key: string }) => r.key), [
    'reports/2026-11-22/1600-summary.json', 'reports/2026-11-22/1600-orders.csv.gz',
    'reports/2026-11-22/0800-summary.json', 'reports/2026-11-22/0800-orders.csv.gz',
    'reports/2026-11-21/0800-summary.json', 'reports/2026-11-21/0800-orders.csv.gz'
  ])
  t.match(reports[0], { slot: '2026-11-22T1600', kind: 'summary', url: '/reports/2026-11-22/1600-summary.json' })
  t.ok(reports.every((r: { size: number }) => r.size > 0))
  t.equal((await app.inject({ url: '/reports?limit=2', headers: auth })).json().reports.length, 2)
  t.equal((await app.inject({ url: '/reports?limit=abc', headers: auth })).json().code, 'LIMIT_INVALID')
})

t.test('GET /reports/<key> answers with the object itself', async (t) => {
  const summary = await app.inject({ url: '/reports/2026-11-22/0800-summary.json', headers: auth })
  t.equal(summary.statusCode, 200)
  t.match(summary.headers['content-type'], /^application\/json/)
  t.equal(summary.headers['cache-control'], 'no-store')
  t.match(summary.headers['content-disposition'], /attachment; filename="2026-11-22-0800-summary.json"/)
  t.equal(summary.json().totalOrders, 50)
  t.equal(Object.keys(summary.json().trackingSummary).length, 8)

  const csv = await app.inject({ url: '/reports/2026-11-22/0800-orders.csv.gz', headers: auth })
  t.equal(csv.statusCode, 200)
  t.equal(csv.headers['content-type'], 'application/gzip')
  t.equal(Number(csv.headers['content-length']), csv.rawPayload.length)
  t.equal(gunzipSync(csv.rawPayload).toString().trim().split('\n').length, 51)
})

t.test('?redirect=1: a 302 to a short-lived presigned URL that works without the token', async (t) => {
  const summary = await app.inject({ url: '/reports/2026-11-22/0800-summary.json?redirect=1', headers: auth })
  t.equal(summary.statusCode, 302)
  const location = summary.headers.location as string
  t.match(location, new RegExp(`^${s3server.endpoint}/${bucket}/reports/2026-11-22/0800-summary.json\\?.*X-Amz-Expires=300`))
  const body = await (await fetch(location)).json() as { totalOrders: number }
  t.equal(body.totalOrders, 50)
  t.equal((await app.inject({ url: '/reports/2026-11-22/0800-summary.json?redirect=maybe', headers: auth })).json().code, 'REDIRECT_INVALID')
  t.equal((await app.inject({ url: '/reports/2026-11-22/0900-summary.json?redirect=1', headers: auth })).statusCode, 404)
})

t.test('real clients download with the token: curl (also --location-trusted), wget, Python urllib', async (t) => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `${address}/reports/2026-11-22/0800-summary.json`
  const expected = (await app.inject({ url: '/reports/2026-11-22/0800-summary.json', headers: auth })).body
  const has = async (cmd: string): Promise<boolean> => await run(cmd, ['--version']).then(() => true, () => false)

  t.equal((await run('curl', ['-sS', '--fail', '-H', `Authorization: Bearer ${token}`, url])).stdout, expected, 'curl')
  t.equal((await run('curl', ['-sS', '--fail', '--location-trusted', '-H', `Authorization: Bearer ${token}`, url])).stdout, expected, 'curl --location-trusted')
  const redirected = await run('curl', ['-sS', '--fail', '-L', '-H', `Authorization: Bearer ${token}`, `${url}?redirect=1`])
  t.equal(redirected.stdout, expected, 'curl -L with ?redirect=1 (curl drops the header on the redirect)')
  if (await has('wget')) {
    t.equal((await run('wget', ['-q', '-O', '-', '--header', `Authorization: Bearer ${token}`, url])).stdout, expected, 'wget --header')
  } else t.comment('wget not installed')
  if (await has('python3')) {
    const script = 'import sys, urllib.request\nreq = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})\nsys.stdout.write(urllib.request.urlopen(req).read().decode())'
    t.equal((await run('python3', ['-c', script, url, token])).stdout, expected, 'python3 urllib')
  } else t.comment('python3 not installed')
})

t.test('bad and unknown report keys', async (t) => {
  for (const [url, status, code] of [
    ['/reports/2026-11-22/0800-secrets.txt', 400, 'REPORT_KEY_INVALID'],
    ['/reports/..%2F..%2Fetc/passwd', 400, 'REPORT_KEY_INVALID'],
    ['/reports/2026-11-22/0900-summary.json', 404, 'REPORT_NOT_FOUND']
  ] as const) {
    const res = await app.inject({ url, headers: auth })
    t.equal(res.statusCode, status, url)
    t.equal(res.json().code, code)
    t.same(shapeDifferences(res.json(), ERROR_EXAMPLE), [])
  }
})

t.test('both need the admin token', async (t) => {
  for (const url of ['/reports', '/reports/2026-11-22/0800-summary.json']) {
    const none = await app.inject(url)
    t.equal(none.statusCode, 401, `${url} without a token`)
    t.equal(none.json().code, 'UNAUTHORIZED')
    const wrong = await app.inject({ url, headers: { authorization: 'Bearer wrong-token' } })
    t.equal(wrong.statusCode, 401, `${url} with a wrong token`)
    t.equal(wrong.json().code, 'TOKEN_INVALID')
    t.notOk(wrong.headers.location, 'no URL handed out')
  }
})

t.test('S3 down: 503 with Retry-After, then fine again', async (t) => {
  await s3server.stop()
  const res = await app.inject({ url: '/reports', headers: auth })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'STORAGE_UNAVAILABLE')
  t.ok(res.headers['retry-after'])
  await s3server.start()
  t.equal((await app.inject({ url: '/reports', headers: auth })).statusCode, 200)
})

t.test('the listing reads plain keys and the offset keys of a repeated local time, in time order', async (t) => {
  for (const key of ['reports/2026-11-01/0000-0400-summary.json', 'reports/2026-11-01/0000-0500-summary.json', 'reports/2026-11-01/0800-summary.json', 'reports/2026-10-31/1600-summary.json']) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{}' }))
  }
  const { reports } = (await app.inject({ url: '/reports?limit=1000', headers: auth })).json()
  const nov1 = reports.filter((r: { key: string }) => r.key.startsWith('reports/2026-11-01/') || r.key.startsWith('reports/2026-10-31/'))
  t.same(nov1.map((r: { slot: string }) => r.slot), ['2026-11-01T0800', '2026-11-01T0000-0500', '2026-11-01T0000-0400', '2026-10-31T1600'], 'the second midnight (-05:00) came after the first')
  t.equal((await app.inject({ url: '/reports/2026-11-01/0000-0500-summary.json', headers: auth })).statusCode, 200)
})
