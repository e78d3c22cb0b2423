import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/app.js'

/**
 * Two API processes (each with its near cache) under continuous writes for 30 s: after every
 * acknowledged POST /events, the process that took the write answers with it at once (never an
 * older answer), and the other process once its near cache has heard the invalidation from Redis;
 * the worst delay seen there is printed.
 */
const root = new URL('../..', import.meta.url).pathname
if (!existsSync(`${root}dist/server.js`)) throw new Error('dist/ is missing: npm test builds it first (npm run build)')
const config = testConfig('e2e_fresh_reads')
await clearKeys(t, config)
const { db } = await freshDatabase(t, config)
await bulkLoadOrders(db, { count: 200, seed: 21 })
const snos = (await db.selectFrom('orders').select('sno').orderBy('sno').execute()).map((o) => Number(o.sno))

async function startApi (): Promise<{ port: number, child: ChildProcess }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'warn', PORT: String(port), DATABASE_URL: config.db.url, REDIS_URL: config.redis.url, REDIS_KEY_PREFIX: config.redis.keyPrefix, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '0' },
    // Piped, not inherited: a process left behind by a killed test must not hold the run's output open.
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout?.pipe(process.stdout)
  child.stderr?.pipe(process.stderr)
  t.teardown(() => { child.kill('SIGKILL') })
  return { port, child }
}
const [a, b] = [await startApi(), await startApi()]
const agent = new Agent({ keepAlive: true, maxSockets: 8 })
t.teardown(() => agent.destroy())

async function call (port: number, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  return await new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request({ host: '127.0.0.1', port, path, method, agent, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) }) })
    })
    req.on('error', reject)
    req.end(payload)
  })
}
t.ok(await eventually(async () => (await call(a.port, 'GET', '/health').catch(() => ({ status: 0 }))).status === 200 && (await call(b.port, 'GET', '/health').catch(() => ({ status: 0 }))).status === 200, 90_000), 'both processes up')

t.test('30 s of writes: the writing process is never stale, the other catches up within its near cache\'s invalidation', async (t) => {
  // Every parcel is read from both processes first, so that both hold it in their near caches.
  for (const sno of snos) { await call(a.port, 'GET', `/query?sno=${sno}`); await call(b.port, 'GET', `/query?sno=${sno}`) }
  const until = Date.now() + 30_000
  let writes = 0
  let staleFromWriter = 0
  let staleFromOtherAtFirstRead = 0
  const delays: number[] = []
  let hour = 0
  while (Date.now() < until) {
    const sno = snos[writes % snos.length]
    const eventId = `fresh-${writes}`
    hour += 1
    const res = await call(a.port, 'POST', '/events', { events: [{ event_id: eventId, sno, status: 'Exception', location_id: 6, occurred_at: new Date(Date.UTC(2025, 0, 1) + hour * 60_000).toISOString() }] })
    if (res.json?.results?.[0]?.result !== 'accepted') throw new Error(`write not accepted: ${JSON.stringify(res.json)}`)
    const acknowledged = performance.now()
    writes += 1
    const has = (answer: { json: { details?: Array<{ time: string }> } }): boolean => (answer.json.details ?? []).some((d) => Date.parse(d.time) === Date.UTC(2025, 0, 1) + hour * 60_000)
    if (!has(await call(a.port, 'GET', `/query?sno=${sno}`))) staleFromWriter += 1
    let fresh = has(await call(b.port, 'GET', `/query?sno=${sno}`))
    if (!fresh) staleFromOtherAtFirstRead += 1
    while (!fresh && performance.now() - acknowledged < 10_000) fresh = has(await call(b.port, 'GET', `/query?sno=${sno}`))
    if (!fresh) throw new Error(`parcel ${sno} still stale in the other process 10 s after the write`)
    delays.push(performance.now() - acknowledged)
  }
  delays.sort((x, y) => x - y)
  t.equal(staleFromWriter, 0, `${writes} writes: the process that took each write answered with it every time`)
  t.comment(`the other process: fresh at the first read ${writes - staleFromOtherAtFirstRead} of ${writes} times; write acknowledged → fresh there p50 ${delays[Math.floor(delays.length / 2)].toFixed(2)} ms, worst ${delays.at(-1)?.toFixed(2)} ms`)
  t.ok(writes > 100, `${writes} writes in 30 s`)
})
