import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { connect } from 'amqplib'
import { sql } from 'kysely'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/app.js'
import { statusOf } from '../../src/writes/status-rule.js'
import { FINAL_STATUSES, TRACKING_STATUSES, type TrackingStatus } from '../../src/tracking/statuses.js'
import { deadLetterQueue } from '../../src/ingest/queue-link.js'
import type { Summary } from '../../src/simulator/simulation.js'

/**
 * npm run simulate against the real stack under PM2 (private PM2_HOME, its own database, Redis
 * prefix, queue and MQTT topics): 3 vehicles and 30 parcels at 3,600× for a minute, then what
 * the simulator says is checked against the database, /query and /fleet.
 */
const exec = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname
const pm2 = path.join(root, 'node_modules/.bin/pm2')
if (!existsSync(path.join(root, 'dist/ingest.js'))) throw new Error('dist/ is missing: npm test builds it first (npm run build)')

const token = 'sim-e2e-admin-token-0123456789abcdef'
const apiPort = await freePort()
const config = testConfig('simulator_e2e')
const database = await freshDatabase(t, config)
await clearKeys(t, config)
const home = await mkdtemp(path.join(tmpdir(), 'lt-sim-pm2-'))
const work = await mkdtemp(path.join(tmpdir(), 'lt-sim-'))
const queue = `lt.simulator_e2e.${process.pid}.events`
const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const env: Record<string, string | undefined> = {
  ...process.env,
  PM2_HOME: home,
  NODE_ENV: 'production',
  ADMIN_TOKEN: token,
  PORT: String(apiPort),
  HOST: '127.0.0.1',
  DATABASE_URL: config.db.url,
  REDIS_URL: config.redis.url,
  REDIS_KEY_PREFIX: config.redis.keyPrefix,
  API_INSTANCES: '2',
  LOG_LEVEL: 'warn',
  SHUTDOWN_TIMEOUT_MS: '3000',
  RATE_LIMIT_PER_MINUTE: '1000000',
  RATE_LIMIT_NOT_FOUND_PER_MINUTE: '1000000',
  S3_LOCAL_ACCESS_KEY_ID: 'sim-e2e-key',
  S3_LOCAL_SECRET_ACCESS_KEY: 'sim-e2e-secret-0123456789',
  MQTT_CLIENT_ID: `lt-sim-e2e-${process.pid}`,
  MQTT_TOPIC_PREFIX: `lt-sim-e2e-${process.pid}`,
  AMQP_URL: amqpUrl,
  AMQP_QUEUE: queue,
  // At 3,600× a second of the service's time is an hour of the simulation's: a short dwell.
  GEOFENCE_DWELL_S: '1',
  API_URL: `http://127.0.0.1:${apiPort}`
}
for (const name of ['S3_BUCKET', 'S3_ENDPOINT', 'S3_REGION']) delete env[name]

async function deleteQueues (): Promise<void> {
  const connection = await connect(amqpUrl)
  const channel = await connection.createChannel()
  await channel.deleteQueue(queue)
  await channel.deleteQueue(deadLetterQueue(queue))
  await connection.close()
}

const pm2Run = async (...args: string[]): Promise<string> => (await exec(pm2, args, { cwd: root, env, timeout: 60_000 })).stdout
t.teardown(async () => {
  await pm2Run('kill').catch(() => {})
  await deleteQueues().catch(() => {})
  await rm(home, { recursive: true, force: true })
  await rm(work, { recursive: true, force: true })
})

const base = `http://127.0.0.1:${apiPort}`
let summary: Summary
let output = ''

t.test('the stack under PM2: API, fleet subscriber, queue consumer', async (t) => {
  await pm2Run('start', 'ecosystem.config.js', '--only', 'api,fleet,ingest')
  t.ok(await eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 90_000), 'the API is healthy')
})

t.test('npm run simulate: 3 vehicles, 30 parcels, 3,600× for a minute', async (t) => {
  const json = path.join(work, 'summary.json')
  const started = Date.now()
  const { stdout, stderr } = await exec('npx', ['tsx', 'scripts/simulate.ts', '--speed', '3600', '--vehicles', '3', '--parcels', '30', '--seed', '7', '--resend-share', '0.15', '--duration', '60s', '--progress', '10', '--json', json],
    { cwd: root, env, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 })
  output = `${stderr}\n${stdout}`
  t.comment(output)
  summary = JSON.parse(await readFile(json, 'utf8')) as Summary
  t.ok(Date.now() - started < 100_000, '--duration ends it on time (with the final reads)')
  t.equal(summary.ended, 'duration')
  t.equal(summary.snos.length, 30, 'every parcel was created through POST /orders')
  t.equal(summary.orders.failed, 0)
  t.match(stdout, /Parcels by status/)
  t.match(stderr, /virtual day \d/, 'status lines while it runs')
  t.ok(summary.positions.published > 1000 && summary.positions.acknowledged === summary.positions.published, 'positions published and acknowledged')
  t.ok(summary.loads.queue > 0 && summary.loads.http > 0, `loads over the queue (${summary.loads.queue}) and HTTP (${summary.loads.http})`)
  t.equal(summary.loads.queueConsumer, 'applied', 'the queue consumer applies vehicle.load')
  t.ok(summary.events.queue > 0 && summary.events.http > 0, 'scans over the queue and HTTP')
  t.equal(summary.events.rejected, 0, 'no scan rejected')
  t.equal(summary.events.missing, 0, 'every scan sent is in /query')
  t.equal(summary.events.storedTwice, 0)
  t.equal(summary.events.accepted, summary.events.sent)
  t.ok(summary.events.resent > 0, `scans sent again (${summary.events.resent})`)
  t.equal(summary.events.duplicate, summary.events.resent, 'every scan sent again came back a duplicate')
  t.equal(summary.deadLettered, 0, 'nothing dead-lettered')
  t.ok((summary.geofenceEvents['In Transit'] ?? 0) > 0, 'arrivals and departures became In Transit events')
  t.ok((summary.geofenceEvents['Out for Delivery'] ?? 0) > 0, 'arrivals at receiver hubs became Out for Delivery')
  t.ok(FINAL_STATUSES.some((s) => (summary.byStatus[s] ?? 0) > 0), 'some parcels reached a final status')
  t.equal(summary.agree, 30, `/query agrees with the simulator for every parcel (${JSON.stringify(summary.disagreements)})`)
  t.equal(summary.fleetAgrees, 3, '/fleet agrees on the parcels on board')
})

t.test('every parcel\'s status is the one its stored events give, each event stored once', async (t) => {
  const { db } = database
  const snos = summary.snos
  const orders = await db.selectFrom('orders').select(['sno', 'status']).where('sno', 'in', snos).execute()
  t.equal(orders.length, 30)
  const events = await db.selectFrom('tracking_events').select(['id', 'order_sno', 'status', 'location_id', 'occurred_at', 'event_id']).where('order_sno', 'in', snos).execute()
  const byStatus: Record<string, number> = {}
  for (const order of orders) {
    const timeline = events.filter((e) => e.order_sno === order.sno)
    t.equal(statusOf(timeline), order.status, `sno ${order.sno}: the order row's status is its timeline's`)
    t.ok((TRACKING_STATUSES as readonly string[]).includes(order.status))
    byStatus[order.status] = (byStatus[order.status] ?? 0) + 1
  }
  t.same(byStatus, summary.byStatus, 'the simulator\'s count by status is the database\'s')
  const twice = await db.selectFrom('tracking_events')
    .select(['order_sno', 'event_id', sql<number>`count(*)`.as('n')])
    .where('order_sno', 'in', snos).where('event_id', 'is not', null)
    .groupBy(['order_sno', 'event_id']).having(sql`count(*)`, '>', 1).execute()
  t.same(twice, [], 'no event id stored twice')
  const sameScan = await db.selectFrom('tracking_events')
    .select(['order_sno', sql<number>`count(*)`.as('n')])
    .where('order_sno', 'in', snos)
    .groupBy(['order_sno', 'status', 'location_id', 'occurred_at']).having(sql`count(*)`, '>', 1).execute()
  t.same(sameScan, [], 'no event stored twice under two ids')

  const res = await fetch(`${base}/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ snos }) })
  const { data } = await res.json() as { data: Array<{ sno: string, tracking_status: TrackingStatus }> }
  t.equal(data.length, 30)
  const rows = new Map(orders.map((o) => [o.sno, o.status]))
  t.same(data.filter((d) => rows.get(Number(d.sno)) !== d.tracking_status), [], '/query shows the stored status')
})

t.test('/fleet agrees with the manifest and the simulator', async (t) => {
  const fleet = await (await fetch(`${base}/fleet`)).json() as { vehicles: Array<{ id: string, parcels_on_board: number, position: unknown }> }
  const ours = fleet.vehicles.filter((v) => v.id.startsWith(`SIM-${summary.run}-`))
  t.equal(ours.length, 3, 'the three vehicles were registered through POST /vehicles')
  const manifest = await database.db.selectFrom('vehicle_parcels').select(['vehicle_id', sql<number>`count(*)`.as('n')]).groupBy('vehicle_id').execute()
  for (const v of ours) {
    t.not(v.position, null, `${v.id} has a position`)
    t.equal(v.parcels_on_board, Number(manifest.find((m) => m.vehicle_id === v.id)?.n ?? 0), `${v.id}: /fleet counts the manifest`)
    t.equal(v.parcels_on_board, summary.vehicles.find((s) => s.id === v.id)?.onboard, `${v.id}: as the simulator has it`)
  }
})
