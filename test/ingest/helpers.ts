import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { connect } from 'amqplib'
import { sql } from 'kysely'
import type { Test } from 'tap'
import pino from 'pino'
import type { Config } from '../../src/config.js'
import type { Db, DatabaseHandle } from '../../src/infra/db.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { HubDirectory } from '../../src/hubs/directory.js'
import { loadParcels } from '../../src/fleet/loading.js'
import { Writer } from '../../src/writes/writer.js'
import { IngestConsumer, type EventWriter } from '../../src/ingest/consumer.js'
import { deadLetterQueue, mainQueueArguments } from '../../src/ingest/queue-link.js'
import { TRACKING_STATUSES } from '../../src/tracking/statuses.js'
import { seeded } from '../../src/simulator/random.js'
import { RUN, testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'

/**
 * Shared by the queue consumer's tests: each file has its own database, Redis prefix and queues
 * (`lt.<file>.events` and its `.dead`), deleted before and after.
 */
const root = new URL('../..', import.meta.url).pathname
const exec = promisify(execFile)
export const AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'

export interface IngestContext {
  config: Config
  database: DatabaseHandle
  db: Db
  queue: string
  dead: string
}

export async function ingestSetup (t: Test, name: string, env: Record<string, string> = {}): Promise<IngestContext> {
  const queue = `lt.${RUN === '' ? '' : `${RUN}.`}${name}.events`
  const config = testConfig(`ingest_${name}`, { AMQP_URL, AMQP_QUEUE: queue, ...env })
  const database = await step(t, 'the test database', async () => await freshDatabase(t, config))
  await step(t, 'the Redis keys', async () => await clearKeys(t, config))
  const dead = deadLetterQueue(queue)
  await step(t, 'the queues', async () => { await deleteQueues(queue, dead) })
  t.teardown(async () => { await deleteQueues(queue, dead) })
  return { config, database, db: database.db, queue, dead }
}

/**
 * One step of a file's setup. A setup that throws at the top level of a test file ends its
 * process before any test, and tap then reports only "no tests found", the error itself going to
 * stderr apart from the file's results: this reports it as a failure of the file, naming the step.
 */
export async function step<T> (t: Test, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    t.fail(`setting up ${what} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    throw err
  }
}

async function deleteQueues (...queues: string[]): Promise<void> {
  const conn = await connect(AMQP_URL)
  const ch = await conn.createChannel()
  for (const q of queues) await ch.deleteQueue(q)
  await conn.close()
}

export interface Fixture {
  snos: number[]
  hubs: number[]
}

/** `count` demo orders through the write path: their snos, and the hub ids. */
export async function makeOrders (t: Test, db: Db, count: number): Promise<Fixture> {
  return await step(t, `${count} orders`, async () => {
    await bulkLoadOrders(db, { count, seed: 7, batchSize: 1000 })
    const snos = (await db.selectFrom('orders').select('sno').orderBy('sno').execute()).map((r) => Number(r.sno))
    const hubs = (await db.selectFrom('locations').select('id').orderBy('id').execute()).map((r) => Number(r.id))
    return { snos, hubs }
  })
}

export interface QueueEvent {
  type: 'tracking.event'
  event_id: string
  sno: number
  status: string
  location_id: number
  occurred_at: string
}

/** `count` valid events (ids `<prefix>-<i>`) spread over the orders, at past times with an offset. */
export function makeEvents ({ snos, hubs }: Fixture, count: number, prefix: string, seed = 1): QueueEvent[] {
  const rnd = seeded(seed)
  const base = Date.now() - 30 * 86_400_000
  return Array.from({ length: count }, (_, i) => {
    const at = new Date(base + Math.floor(rnd() * 29 * 86_400_000))
    // Half in UTC, half with Taipei's offset: both must be read the same.
    const local = new Date(at.getTime() + 8 * 3_600_000).toISOString().replace('Z', '+08:00')
    return {
      type: 'tracking.event',
      event_id: `${prefix}-${i}`,
      sno: snos[Math.floor(rnd() * snos.length)],
      status: TRACKING_STATUSES[Math.floor(rnd() * TRACKING_STATUSES.length)],
      location_id: hubs[Math.floor(rnd() * hubs.length)],
      occurred_at: i % 2 === 0 ? at.toISOString() : local
    }
  })
}

/** Publishes raw bodies (persistent, with confirms); resolves once the broker has them all. */
export async function publish (queue: string, bodies: ReadonlyArray<Buffer | string | object>, { url = AMQP_URL, deliveryLimit = 5 } = {}): Promise<void> {
  const conn = await connect(url)
  const ch = await conn.createConfirmChannel()
  // Declared the way the consumer declares it, so that publishing first does not race it.
  await ch.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } }).catch(() => {})
  await ch.assertQueue(queue, { durable: true, arguments: mainQueueArguments(queue, deliveryLimit) })
  for (const [i, body] of bodies.entries()) {
    const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    if (!ch.publish('', queue, content, { persistent: true, contentType: 'application/json', messageId: `m-${i}` })) {
      await new Promise((resolve) => ch.once('drain', resolve))
    }
  }
  await ch.waitForConfirms()
  await conn.close()
}

/** Every message in a queue, taken off it: body and headers. */
export async function drain (queue: string): Promise<Array<{ body: string, headers: Record<string, unknown> }>> {
  const conn = await connect(AMQP_URL)
  const ch = await conn.createChannel()
  const out: Array<{ body: string, headers: Record<string, unknown> }> = []
  for (;;) {
    const msg = await ch.get(queue, { noAck: true })
    if (msg === false) break
    out.push({ body: msg.content.toString(), headers: msg.properties.headers ?? {} })
  }
  await conn.close()
  return out
}

/** Messages in a queue, ready and unacknowledged (from the broker itself). */
export async function queueDepth (queue: string): Promise<{ ready: number, unacked: number }> {
  const { stdout } = await exec('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged'], { timeout: 30_000 })
  const line = stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === queue)
  return line === undefined ? { ready: 0, unacked: 0 } : { ready: Number(line[1]), unacked: Number(line[2]) }
}

/** Events stored with this id prefix, and how many ids were stored more than once. */
export async function stored (db: Db, prefix: string): Promise<{ count: number, doubled: number, changes: number }> {
  const like = `${prefix}-%`
  const { rows: [c] } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM tracking_events WHERE event_id LIKE ${like}`.execute(db)
  const { rows: [d] } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM (SELECT event_id FROM tracking_events WHERE event_id LIKE ${like} GROUP BY event_id HAVING COUNT(*) > 1) x`.execute(db)
  const { rows: [l] } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM change_log WHERE kind = 'tracking.event' AND JSON_VALUE(payload, '$.event_id') LIKE ${like}`.execute(db)
  return { count: Number(c.n), doubled: Number(d.n), changes: Number(l.n) }
}

/** Polls (every 200 ms) until `check` holds or `timeoutMs` passes; whether it held. */
export async function until (check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** The consumer in this process, on the real Writer (or a wrapper of it); stopped at the end. */
export function consumerFor (t: Test, ctx: IngestContext, config: Config = ctx.config, wrap?: (writer: Writer) => EventWriter, dbHandle = ctx.database): IngestConsumer {
  const hubs = new HubDirectory(dbHandle.db)
  const writer = new Writer(dbHandle.db, { hubExists: async (id) => await hubs.has(id) })
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const loads = { loadParcels: async (body: unknown) => await loadParcels(dbHandle.db, body, { hubExists: async (id) => await hubs.has(id) }) }
  const consumer = new IngestConsumer(config.amqp, wrap === undefined ? { applyEvents: async (events) => await writer.applyEvents(events), ...loads } : { ...loads, ...wrap(writer) }, logger, { summaryIntervalMs: 0 })
  t.teardown(async () => { await consumer.stop() })
  return consumer
}

/** `node --import tsx src/ingest.ts` as a child process with the test's settings. */
export class IngestProcess {
  readonly output: string[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private readonly child: ChildProcess

  constructor (config: Config, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/ingest.ts'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        DATABASE_URL: config.db.url,
        REDIS_URL: config.redis.url,
        REDIS_KEY_PREFIX: config.redis.keyPrefix,
        AMQP_URL: config.amqp.url,
        AMQP_QUEUE: config.amqp.queue,
        SHUTDOWN_TIMEOUT_MS: '20000',
        ...env
      }
    })
    for (const stream of [this.child.stdout, this.child.stderr]) stream?.on('data', (chunk: Buffer) => { this.output.push(chunk.toString()) })
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  static start (t: Test, config: Config, env: Record<string, string> = {}): IngestProcess {
    const p = new IngestProcess(config, env)
    t.teardown(async () => { if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited } })
    return p
  }

  /** Resolves when the process reports ready (connected and consuming) to its parent, as PM2 sees it. */
  async ready (timeoutMs = 30_000): Promise<boolean> {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      this.child.once('message', (m) => { clearTimeout(timer); resolve(m === 'ready') })
      this.child.once('exit', () => { clearTimeout(timer); resolve(false) })
    })
  }

  kill (signal: NodeJS.Signals): void {
    this.child.kill(signal)
  }

  /** Log lines at warn or above (for a failure message); never message bodies. */
  problems (): string[] {
    return this.output.join('').split('\n').filter((l) => /"level":(4|5|6)0/.test(l))
  }
}
