import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { freePort } from '../lib/ports.js'
import { loadConfig, loadEnvFile } from '../../src/config.js'
import { createDatabase } from '../../src/infra/db.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { listHubs, seedHubs } from '../../src/hubs/hubs.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { Writer } from '../../src/writes/writer.js'
import { API_NODE_ARGS } from './common.js'

/**
 * The live part of the benchmark (`npm run bench:live`, and at the end of `npm run bench`): one
 * API process holding `streams` Server-Sent-Event streams (one per parcel), its RSS with them
 * open, and the delay from commit to delivery at a steady `rate` changes per second.
 */
const root = new URL('../..', import.meta.url).pathname
const DATABASE = 'logistics_bench_live'

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

export async function runLiveBench ({ streams = 10_000, rate = 500, seconds = 10 } = {}): Promise<Array<Record<string, string | number>>> {
  loadEnvFile()
  const base = loadConfig()
  const url = new URL(base.db.url)
  url.pathname = `/${DATABASE}`
  const config = loadConfig({ ...process.env, DATABASE_URL: url.toString(), REDIS_KEY_PREFIX: 'bench-live:' })
  await dropDatabase(config.db)
  await ensureDatabase(config.db)
  const database = createDatabase({ ...config.db, queryTimeoutMs: 0, poolSize: 4 })
  const rows: Array<Record<string, string | number>> = []
  let api: ChildProcess | undefined
  const agent = new Agent({ keepAlive: true, maxSockets: streams + 10 })
  try {
    await migrateToLatest(database.db)
    await seedHubs(database.db)
    await bulkLoadOrders(database.db, { count: streams, seed: 9 })
    const snos = (await database.db.selectFrom('orders').select('sno').orderBy('sno').execute()).map((o) => Number(o.sno))
    const hubs = (await listHubs(database.db)).map((h) => h.id)
    const port = await freePort()
    api = spawn(process.execPath, [...API_NODE_ARGS, 'dist/server.js'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: config.db.url, REDIS_KEY_PREFIX: 'bench-live:', PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'development', LIVE_MAX_STREAMS_PER_CLIENT: String(streams + 10), LIVE_MAX_STREAMS: String(streams + 10), RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' },
      stdio: ['ignore', 'ignore', 'inherit']
    })
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline && !await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) await new Promise((resolve) => setTimeout(resolve, 100))
    const idleRss = rssMb(api.pid as number)

    // One stream per parcel; each change is timed from its commit to its arrival.
    const committed = new Map<string, number>()
    const delays: number[] = []
    const count = { opened: 0, received: 0 }
    const open = async (sno: number): Promise<void> => await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/query/stream?sno=${sno}`, agent }, (res) => {
        if (res.statusCode !== 200) { reject(new Error(`stream answered ${res.statusCode ?? 0}`)); return }
        res.setEncoding('utf8')
        let buffer = ''
        res.on('data', (chunk: string) => {
          buffer += chunk
          let end: number
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            if (block.includes('event: snapshot')) { count.opened++; resolve() }
            const eventId = /"event_id":"([^"]+)"/.exec(block)?.[1]
            if (block.includes('event: change') && eventId !== undefined) {
              // Timed from the commit's acknowledgement (or from the call, when the event came first).
              const at = committed.get(eventId)
              if (at !== undefined) { delays.push(performance.now() - at); count.received++ }
            }
          }
        })
      })
      req.on('error', reject)
      req.end()
    })
    // Opened in waves of 250, as clients arrive, not all in one instant.
    for (let i = 0; i < snos.length; i += 250) await Promise.all(snos.slice(i, i + 250).map(open))
    const openRss = rssMb(api.pid as number)
    rows.push({ scenario: `${count.opened} open streams on one API process`, 'RSS MB': Math.round(openRss), 'RSS MB before': Math.round(idleRss) })

    // A steady rate of changes, 10 every 1000/rate*10 ms, each on a different parcel.
    const writer = new Writer(database.db, { hubExists: async () => true })
    const total = rate * seconds
    const start = performance.now()
    for (let i = 0; i < total; i += 10) {
      const wait = start + (i / rate) * 1000 - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const events = Array.from({ length: 10 }, (_, k) => ({ event_id: `live-${i + k}`, sno: snos[(i + k) % snos.length], status: 'In Transit' as const, location_id: hubs[(i + k) % hubs.length], occurred_at: new Date(Date.now() - 86_400_000 + i + k) }))
      const before = performance.now()
      for (const e of events) committed.set(e.event_id, before)
      await writer.applyEvents(events)
      const now = performance.now()
      for (const e of events) committed.set(e.event_id, now)
    }
    const settle = Date.now() + 15_000
    while (count.received < total && Date.now() < settle) await new Promise((resolve) => setTimeout(resolve, 50))
    delays.sort((a, b) => a - b)
    const pct = (p: number): number => Number((delays[Math.min(delays.length - 1, Math.floor(p * delays.length))] ?? NaN).toFixed(1))
    rows.push({ scenario: `${rate} changes/s for ${seconds} s to ${count.opened} streams: commit → delivered (${count.received} of ${total})`, 'p50 ms': pct(0.5), 'p99 ms': pct(0.99), 'RSS MB': Math.round(rssMb(api.pid as number)) })
  } finally {
    agent.destroy()
    api?.kill('SIGKILL')
    await database.close()
    await dropDatabase(config.db).catch(() => {})
  }
  return rows
}

if (process.argv[1]?.endsWith('bench/live.ts') === true) {
  runLiveBench({ streams: Number(process.env.BENCH_LIVE_STREAMS ?? 10_000) }).then((rows) => {
    console.table(rows)
    process.exit(0)
  }, (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
