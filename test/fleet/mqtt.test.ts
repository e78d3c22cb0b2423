import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { sql } from 'kysely'
import { createConnection } from 'mysql2/promise'
import mqtt from 'mqtt'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { driveIntoHub, shuffled } from './drive.js'

/**
 * The MQTT intake as it runs in production: `src/fleet.ts` as its own process against the real
 * Mosquitto, SIGKILLed in the middle of a drive and started again.
 */
const MQTT_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883'
const PREFIX = `lt/fleet_mqtt_${process.pid}/fleet`
const CLIENT_ID = `lt-fleet-mqtt-${process.pid}`
const env = { MQTT_URL, MQTT_TOPIC_PREFIX: PREFIX, MQTT_CLIENT_ID: CLIENT_ID, FLEET_BATCH_MAX: '2', FLEET_BATCH_WAIT_MS: '1' }
const { app, database, config } = await buildTestApp(t, 'fleet_mqtt', env)
const db = database.db
const hub7 = await db.selectFrom('locations').selectAll().where('id', '=', 7).executeTakeFirstOrThrow()
const minutesAgo = (m: number): number => Date.now() - m * 60_000

const publisher = await mqtt.connectAsync(MQTT_URL, { clientId: `lt-fleet-pub-${process.pid}`, clean: true })
t.teardown(async () => { await publisher.endAsync() })
// Leave no session behind on the shared broker.
t.teardown(async () => {
  const c = await mqtt.connectAsync(MQTT_URL, { clientId: CLIENT_ID, clean: true })
  await c.endAsync()
})
const publish = async (vehicle: string, payload: unknown): Promise<void> => {
  await publisher.publishAsync(`${PREFIX}/${vehicle}/position`, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 })
}

/** Starts the subscriber process; resolves once it has subscribed. */
async function startSubscriber (): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/fleet.ts'], {
    env: {
      ...process.env,
      ...env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: config.db.url,
      REDIS_URL: config.redis.url,
      REDIS_KEY_PREFIX: config.redis.keyPrefix
    },
    // Piped, not inherited: a process left behind by a killed test must not hold the run's output open.
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stderr?.pipe(process.stderr)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`the subscriber did not subscribe: ${text}`)), 30_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes('subscribed to positions')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => reject(new Error(`the subscriber exited (${code}): ${text}`)))
  })
  return child
}

const newestFix = async (vehicle: string): Promise<number> =>
  (await db.selectFrom('vehicles').select('fix_at').where('id', '=', vehicle).executeTakeFirst())?.fix_at?.getTime() ?? 0
const counters = async (): Promise<Record<string, number>> =>
  Object.fromEntries((await db.selectFrom('fleet_counters').selectAll().execute()).map((r) => [r.name, Number(r.count)]))
const fleetEvents = async (sno: number): Promise<Array<{ status: string, location_id: number }>> =>
  (await sql<{ status: string, location_id: number }>`SELECT status, location_id FROM tracking_events WHERE order_sno = ${sno} AND event_id LIKE 'v:%' ORDER BY occurred_at, id`.execute(db)).rows

t.test('a drive over MQTT, the subscriber SIGKILLed in the middle: one arrival, one departure, no fix lost', async (t) => {
  await db.insertInto('vehicles').values({ id: 'MQ-01', name: 'MQ 1', capacity: 10, home_location_id: 1 }).execute()
  const { sno } = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 1, at: new Date(minutesAgo(60)).toISOString() }] })
  await db.updateTable('orders').set({ sender_location_id: 1, receiver_location_id: 3 }).where('sno', '=', sno).execute()
  await db.insertInto('vehicle_parcels').values({ sno, vehicle_id: 'MQ-01', location_id: 1, loaded_at: new Date(minutesAgo(40)) }).execute()
  t.equal((await app.inject(`/query?sno=${sno}`)).json().tracking_status, 'Created', '/query cached before the drive')

  const drive = driveIntoHub({ lat: Number(hub7.lat), lng: Number(hub7.lng) }, minutesAgo(20), 300)
  const third = Math.floor(drive.length / 3)
  const cut = Math.floor(drive.length * 0.6)
  let subscriber = await startSubscriber()
  await Promise.all(drive.slice(0, third).map(async (fix) => await publish('MQ-01', fix)))
  t.ok(await eventually(async () => await newestFix('MQ-01') === drive[third - 1].ts, 60_000), 'a third of it written')
  // Hold the vehicle's row: the subscriber's next batch waits for it, taken and not acknowledged.
  const blocker = await createConnection({ host: config.db.host, port: config.db.port, user: config.db.user, password: config.db.password, database: config.db.database })
  await blocker.query('BEGIN')
  await blocker.query("SELECT id FROM vehicles WHERE id = 'MQ-01' FOR UPDATE")
  await Promise.all(drive.slice(third, cut).map(async (fix) => await publish('MQ-01', fix)))
  const waiting = async (): Promise<boolean> => {
    const [rows] = await blocker.query(`SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`)
    return Number((rows as Array<{ n: number }>)[0].n) > 0
  }
  // Usually seen at once; either way nothing more can be written while the row is held, so the
  // kill below lands with fixes published and not written.
  if (!await eventually(waiting, 10_000)) t.comment('the subscriber was not seen waiting for the row; killing it anyway')
  subscriber.kill('SIGKILL')
  await new Promise((resolve) => subscriber.once('exit', resolve))
  await blocker.query('ROLLBACK')
  await blocker.end()
  const atKill = await newestFix('MQ-01')
  t.equal(atKill, drive[third - 1].ts, 'killed with fixes taken and not written')
  for (const fix of drive.slice(cut)) await publish('MQ-01', fix)

  subscriber = await startSubscriber()
  t.ok(await eventually(async () => await newestFix('MQ-01') === drive[drive.length - 1].ts, 60_000), 'the rest arrives after the restart (persistent session)')
  const stored = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM vehicle_positions WHERE vehicle_id = 'MQ-01'`.execute(db)
  t.equal(Number(stored.rows[0].n), drive.length, 'every fix stored once: none lost at the kill')
  t.same((await fleetEvents(sno)).map((e) => [e.status, e.location_id]), [['In Transit', 7], ['In Transit', 7]], 'exactly one arrival and one departure')
  t.ok(await eventually(async () => (await app.inject(`/query?sno=${sno}`)).json().tracking_status === 'In Transit', 10_000), '/query shows it after the commit')

  const before = await counters()
  for (const fix of shuffled(drive, 11)) await publish('MQ-01', fix)
  t.ok(await eventually(async () => ((await counters())['mqtt.late'] ?? 0) - (before['mqtt.late'] ?? 0) >= drive.length, 60_000), 'the shuffled replay is read, all late')
  t.equal((await fleetEvents(sno)).length, 2, 'and adds no event')

  await publish('MQ-01', 'not json')
  await publish('MQ-01', { lat: 123, lng: 121, ts: Date.now() })
  await publish('MQ-01', { lat: 25, lng: 121, ts: Date.now() + 3_600_000 })
  await publish('MQ-01', { lat: 25, lng: 121 })
  await publish('NOPE-9', { lat: 25, lng: 121, ts: Date.now() })
  await publisher.publishAsync(`${PREFIX}/bad id/position`, JSON.stringify({ lat: 25, lng: 121, ts: Date.now() }), { qos: 1 })
  const expected = { 'mqtt.refused.PAYLOAD_INVALID': 1, 'mqtt.refused.COORDINATES_INVALID': 1, 'mqtt.refused.TIME_IN_FUTURE': 1, 'mqtt.refused.TIME_INVALID': 1, 'mqtt.refused.VEHICLE_NOT_FOUND': 1, 'mqtt.refused.TOPIC_INVALID': 1 }
  t.ok(await eventually(async () => {
    const now = await counters()
    return Object.entries(expected).every(([k, v]) => (now[k] ?? 0) - (before[k] ?? 0) === v)
  }, 30_000), 'each refusal counted')
  const after = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM vehicle_positions`.execute(db)
  t.equal(Number(after.rows[0].n), drive.length, 'none of them stored')
  t.equal(subscriber.exitCode, null, 'the subscriber is still running')

  subscriber.kill('SIGINT')
  const code = await new Promise((resolve) => subscriber.once('exit', resolve))
  t.equal(code, 0, 'stops cleanly on SIGINT')
})
