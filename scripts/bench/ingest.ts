import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { freePort } from '../lib/ports.js'
import { connect } from 'amqplib'
import { sql } from 'kysely'
import { loadConfig, loadEnvFile, type Config } from '../../src/config.js'
import { createDatabase, type Db } from '../../src/infra/db.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { listHubs, seedHubs } from '../../src/hubs/hubs.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { deadLetterQueue, mainQueueArguments } from '../../src/ingest/queue-link.js'
import { Writer } from '../../src/writes/writer.js'
import { API_NODE_ARGS } from './common.js'

/**
 * The ingestion part of the benchmark (`npm run bench:ingest`, and at the end of `npm run bench`):
 * - events/s from RabbitMQ into MySQL through the real consumer (`dist/ingest.js`), publish → committed;
 * - the same through a baseline consumer that works as the original worker does (prefetch 1, one
 *   transaction and one acknowledgement per message), in the same run;
 * - events/s through POST /events (500 per request, 4 at a time);
 * - at a steady 1,000 events/s through the queue, the delay from publish to the change being
 *   visible in /query (p50, p99), sampled on 1 event in 20;
 * - the consumer's peak RSS.
 */
const root = new URL('../..', import.meta.url).pathname
const DATABASE = 'logistics_bench_ingest'
const ORDERS = 10_000
const STATUSES = ['Package Received', 'In Transit', 'Out for Delivery', 'Delivery Attempted', 'Exception'] as const

interface Options { events: number, baselineEvents: number, steadySeconds: number }

function eventsFor (snos: number[], hubs: number[], count: number, prefix: string): Array<Record<string, unknown>> {
  const start = Date.now() - 30 * 86_400_000
  return Array.from({ length: count }, (_, i) => ({
    type: 'tracking.event',
    event_id: `${prefix}-${i}`,
    sno: snos[i % snos.length],
    status: STATUSES[i % STATUSES.length],
    location_id: hubs[i % hubs.length],
    occurred_at: new Date(start + i * 1000).toISOString()
  }))
}

async function countEvents (db: Db, prefix: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM tracking_events WHERE event_id LIKE ${`${prefix}-%`}`.execute(db)
  return Number(rows[0].n)
}

async function waitFor (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}

async function publishAll (url: string, queue: string, deliveryLimit: number, bodies: Array<Record<string, unknown>>): Promise<void> {
  const connection = await connect(url)
  const channel = await connection.createConfirmChannel()
  await channel.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  await channel.assertQueue(queue, { durable: true, arguments: mainQueueArguments(queue, deliveryLimit) })
  for (let i = 0; i < bodies.length; i++) {
    channel.sendToQueue(queue, Buffer.from(JSON.stringify(bodies[i])), { persistent: true })
    if (i % 2000 === 1999) await channel.waitForConfirms()
  }
  await channel.waitForConfirms()
  await connection.close()
}

async function deleteQueues (url: string, queue: string): Promise<void> {
  const connection = await connect(url)
  const channel = await connection.createChannel()
  await channel.deleteQueue(queue).catch(() => {})
  await channel.deleteQueue(deadLetterQueue(queue)).catch(() => {})
  await connection.close().catch(() => {})
}

function peakRssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

function startProcess (script: string, env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
}

/** The original worker's way: one message in flight, one transaction and one acknowledgement each. */
async function baselineConsumer (config: Config, db: Db, queue: string, count: number): Promise<number> {
  const writer = new Writer(db, { hubExists: async () => true })
  const connection = await connect(config.amqp.url)
  const channel = await connection.createChannel()
  await channel.prefetch(1)
  const started = performance.now()
  let done = 0
  await new Promise<void>((resolve, reject) => {
    channel.consume(queue, (message) => {
      if (message === null) return
      const body = JSON.parse(message.content.toString()) as Record<string, unknown>
      writer.applyEvents([{ event_id: String(body.event_id), sno: Number(body.sno), status: body.status as never, location_id: Number(body.location_id), occurred_at: new Date(String(body.occurred_at)) }])
        .then(() => {
          channel.ack(message)
          if (++done === count) resolve()
        }, reject)
    }).catch(reject)
  })
  const seconds = (performance.now() - started) / 1000
  await connection.close()
  return count / seconds
}

export async function runIngestBench (options: Options): Promise<Array<Record<string, string | number>>> {
  loadEnvFile()
  const base = loadConfig()
  const url = new URL(base.db.url)
  url.pathname = `/${DATABASE}`
  const config = loadConfig({ ...process.env, NODE_ENV: 'development', DATABASE_URL: url.toString(), REDIS_KEY_PREFIX: 'bench-ingest:', LOG_LEVEL: 'warn' })
  await dropDatabase(config.db)
  await ensureDatabase(config.db)
  const database = createDatabase({ ...config.db, queryTimeoutMs: 0, poolSize: 4 })
  const db = database.db
  const rows: Array<Record<string, string | number>> = []
  const children: ChildProcess[] = []
  const queue = `bench.ingest.${process.pid}`
  try {
    await migrateToLatest(db)
    await seedHubs(db)
    await bulkLoadOrders(db, { count: ORDERS, seed: 7 })
    const snos = (await db.selectFrom('orders').select('sno').execute()).map((o) => Number(o.sno))
    const hubs = (await listHubs(db)).map((h) => h.id)
    const apiPort = await freePort()
    const env = { DATABASE_URL: config.db.url, REDIS_KEY_PREFIX: 'bench-ingest:', AMQP_QUEUE: queue, LOG_LEVEL: 'warn', NODE_ENV: 'development', PORT: String(apiPort), RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' }

    // 1. The baseline consumer, on its own part of the stream.
    await publishAll(config.amqp.url, queue, config.amqp.deliveryLimit, eventsFor(snos, hubs, options.baselineEvents, 'base'))
    const baseline = await baselineConsumer(config, db, queue, options.baselineEvents)
    rows.push({ scenario: 'baseline consumer: prefetch 1, one transaction and ack per message', 'events/s': Math.round(baseline), 'vs baseline': 1 })

    // 2. The real consumer: everything published first, then the consumer started and timed.
    await publishAll(config.amqp.url, queue, config.amqp.deliveryLimit, eventsFor(snos, hubs, options.events, 'bulk'))
    const consumer = startProcess('dist/ingest.js', env)
    children.push(consumer)
    // Timed from its first commit (its start-up, about a second, is not ingestion) to its last.
    await waitFor(async () => await countEvents(db, 'bulk') > 0, 60_000)
    const started = performance.now()
    const first = await countEvents(db, 'bulk')
    const drained = await waitFor(async () => await countEvents(db, 'bulk') >= options.events, 600_000)
    const seconds = (performance.now() - started) / 1000
    const rate = (options.events - first) / seconds
    rows.push({ scenario: `consumer (dist/ingest.js): ${options.events} queued events, committed${drained ? '' : ' (DID NOT FINISH)'}`, 'events/s': Math.round(rate), 'vs baseline': Number((rate / baseline).toFixed(1)) })

    // The floor: the write path alone, the same batches with no broker (what MySQL gives here).
    const floorWriter = new Writer(db, { hubExists: async () => true })
    const floorEvents = eventsFor(snos, hubs, 20_000, 'floor')
    const floorStart = performance.now()
    for (let i = 0; i < floorEvents.length; i += config.amqp.batchMax) {
      await floorWriter.applyEvents(floorEvents.slice(i, i + config.amqp.batchMax).map((e) => ({ event_id: String(e.event_id), sno: Number(e.sno), status: e.status as never, location_id: Number(e.location_id), occurred_at: new Date(String(e.occurred_at)) })))
    }
    const floor = floorEvents.length / ((performance.now() - floorStart) / 1000)
    rows.push({ scenario: `floor: the write path alone, ${config.amqp.batchMax} events a transaction, no broker`, 'events/s': Math.round(floor), 'vs baseline': Number((floor / baseline).toFixed(1)) })

    // 3. POST /events: 500 events a request, 4 requests at a time.
    const api = startProcess('dist/server.js', env, API_NODE_ARGS)
    children.push(api)
    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    const post = async (body: string): Promise<number> => await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: apiPort, path: '/events', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
      req.on('error', reject)
      req.end(body)
    })
    const get = async (path: string): Promise<string> => await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: apiPort, path, agent }, (res) => { let text = ''; res.setEncoding('utf8'); res.on('data', (c: string) => { text += c }); res.on('end', () => resolve(text)) })
      req.on('error', reject)
      req.end()
    })
    await waitFor(async () => await get('/health').then((t) => t.includes('"ok"'), () => false), 30_000)
    const httpEvents = eventsFor(snos, hubs, 40_000, 'http').map(({ type, ...e }) => e)
    const batches = Array.from({ length: httpEvents.length / 500 }, (_, i) => JSON.stringify({ events: httpEvents.slice(i * 500, i * 500 + 500) }))
    const httpStarted = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 4 }, async () => { while (next < batches.length) { const status = await post(batches[next++]); if (status !== 200) throw new Error(`POST /events answered ${status}`) } }))
    const httpRate = httpEvents.length / ((performance.now() - httpStarted) / 1000)
    rows.push({ scenario: 'POST /events: 500 a request, 4 at a time (one API process)', 'events/s': Math.round(httpRate), 'vs baseline': Number((httpRate / baseline).toFixed(1)) })

    // 4. A steady 1,000 events/s through the queue; publish → visible in /query, 1 in 20 sampled.
    const connection = await connect(config.amqp.url)
    const channel = await connection.createConfirmChannel()
    const steady = eventsFor(snos, hubs, options.steadySeconds * 1000, 'steady')
    const delays: number[] = []
    const probes: Array<Promise<void>> = []
    const steadyStart = performance.now()
    for (let i = 0; i < steady.length; i += 10) {
      const due = steadyStart + i // 10 events every 10 ms
      const wait = due - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      for (const body of steady.slice(i, i + 10)) channel.sendToQueue(queue, Buffer.from(JSON.stringify(body)), { persistent: true })
      if (i % 20 === 0) {
        const probe = steady[i]
        const sent = performance.now()
        probes.push((async () => {
          const deadline = sent + 10_000
          while (performance.now() < deadline) {
            const body = await get(`/query?sno=${String(probe.sno)}`)
            if (body.includes('"time":"') && body.includes(String(probe.status)) && (JSON.parse(body) as { details: Array<{ time: string }> }).details.some((d) => Date.parse(d.time) === Date.parse(String(probe.occurred_at)))) {
              delays.push(performance.now() - sent)
              return
            }
            await new Promise((resolve) => setTimeout(resolve, 2))
          }
          delays.push(Infinity)
        })())
      }
    }
    await channel.waitForConfirms()
    await Promise.all(probes)
    await connection.close()
    agent.destroy()
    delays.sort((a, b) => a - b)
    const pct = (p: number): number => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))]
    rows.push({ scenario: `steady 1,000 events/s for ${options.steadySeconds} s: publish → visible in /query (${delays.length} probes)`, 'p50 ms': Number(pct(0.5).toFixed(1)), 'p99 ms': Number(pct(0.99).toFixed(1)) })
    rows.push({ scenario: 'consumer peak RSS', MB: Math.round(peakRssMb(consumer.pid as number)) })
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await deleteQueues(config.amqp.url, queue)
    await database.close()
    await dropDatabase(config.db).catch(() => {})
  }
  return rows
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\/scripts\//, 'scripts/'))) {
  runIngestBench({ events: Number(process.env.BENCH_INGEST_EVENTS ?? 100_000), baselineEvents: 3000, steadySeconds: 20 })
    .then((rows) => {
      console.table(rows)
      process.exit(0)
    }, (err: unknown) => {
      console.error(err)
      process.exit(1)
    })
}
