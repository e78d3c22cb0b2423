import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { Writer } from '../../src/writes/writer.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { startNginx, writeNginxConfig } from '../helpers/nginx.js'
import { eventually } from '../helpers/app.js'
import { SseClient } from '../helpers/sse.js'

/**
 * Live streams through nginx (the shipped site config) and PM2 with two API processes: 1,000
 * clients on one parcel and 1,000 on 1,000 others each receive every change of their parcel once
 * and in order; the delay from commit to delivery is printed.
 */
const exec = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname
const pm2 = path.join(root, 'node_modules/.bin/pm2')
if (!existsSync(path.join(root, 'dist/server.js'))) throw new Error('dist/ is missing: npm test builds it first (npm run build)')

const [apiPort, nginxPort] = [await freePort(), await freePort()]
const config = testConfig('e2e_live')
const { db } = await freshDatabase(t, config)
await clearKeys(t, config)
const home = await mkdtemp(path.join(tmpdir(), 'lt-pm2-live-'))
const env = {
  ...process.env,
  PM2_HOME: home,
  NODE_ENV: 'test',
  PORT: String(apiPort),
  HOST: '127.0.0.1',
  DATABASE_URL: config.db.url,
  REDIS_URL: config.redis.url,
  REDIS_KEY_PREFIX: config.redis.keyPrefix,
  API_INSTANCES: '2',
  LOG_LEVEL: 'warn',
  SHUTDOWN_TIMEOUT_MS: '3000',
  RATE_LIMIT_PER_MINUTE: '1000000',
  LIVE_MAX_STREAMS_PER_CLIENT: '100000',
  // This test is about delivery; shedding load (503 when the event loop lags on a busy machine)
  // has its own tests.
  MAX_EVENT_LOOP_DELAY_MS: '0'
}
const pm2Run = async (...args: string[]): Promise<string> => (await exec(pm2, args, { cwd: root, env, timeout: 60_000 })).stdout
t.teardown(async () => {
  await pm2Run('kill').catch(() => {})
  await rm(home, { recursive: true, force: true })
})
const { dir, conf } = await writeNginxConfig(t, nginxPort, apiPort)
await startNginx(t, conf, dir)
const base = `http://127.0.0.1:${nginxPort}`

await bulkLoadOrders(db, { count: 1001, seed: 11 })
const snos = (await db.selectFrom('orders').select('sno').orderBy('sno').execute()).map((o) => Number(o.sno))
const [hot, ...others] = snos
const writer = new Writer(db, { hubExists: async () => true })

t.test('2,000 streams through nginx and two API processes get every change once, in order', async (t) => {
  await pm2Run('start', 'ecosystem.config.js', '--only', 'api')
  t.ok(await eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 90_000), 'healthy through nginx')

  // Clients arrive in waves of 200, as they would, each wave waiting for its snapshots.
  const wanted = [...Array.from({ length: 1000 }, () => hot), ...others]
  const clients: Array<{ sno: number, client: SseClient }> = []
  t.teardown(() => { for (const { client } of clients) client.close() })
  for (let i = 0; i < wanted.length; i += 200) {
    const wave = wanted.slice(i, i + 200).map((sno) => ({ sno, client: new SseClient(`${base}/query/stream?sno=${sno}`) }))
    clients.push(...wave)
    await eventually(() => wave.every(({ client }) => client.events.length >= 1 || client.ended), 60_000)
  }
  t.ok(await eventually(() => clients.every(({ client }) => client.events.length >= 1), 60_000), 'every stream has its snapshot')
  t.ok(clients.every(({ client }) => client.headers['content-type'] === 'text/event-stream; charset=utf-8'))

  // 20 changes on the hot parcel, one on each of the others; commit times kept per change.
  const committedAt = new Map<string, number>()
  const hour = (n: number): Date => new Date(Date.now() - (48 - n) * 3_600_000)
  for (let i = 0; i < 20; i++) {
    await writer.applyEvents([{ event_id: `live-hot-${i}`, sno: hot, status: 'In Transit', location_id: 6, occurred_at: hour(i) }])
    committedAt.set(`${hot}:${i}`, Date.now())
  }
  for (let i = 0; i < others.length; i += 100) {
    await writer.applyEvents(others.slice(i, i + 100).map((sno) => ({ event_id: 'live-1', sno, status: 'Exception' as const, location_id: 6, occurred_at: hour(30) })))
    for (const sno of others.slice(i, i + 100)) committedAt.set(`${sno}:live-1`, Date.now())
  }

  const changes = (client: SseClient): Array<{ seq: number, event_id: string }> => client.events.filter((e) => e.event === 'change').map((e) => JSON.parse(e.data))
  const done = await eventually(() => clients.every(({ sno, client }) => changes(client).length >= (sno === hot ? 20 : 1)), 60_000)
  t.ok(done, 'every client got its changes')
  let wrong = 0
  const delays: number[] = []
  for (const { sno, client } of clients) {
    const got = changes(client)
    const expected = sno === hot ? Array.from({ length: 20 }, (_, i) => `live-hot-${i}`) : ['live-1']
    if (JSON.stringify(got.map((c) => c.event_id)) !== JSON.stringify(expected)) wrong += 1
    for (const event of client.events.filter((e) => e.event === 'change')) {
      const { event_id: id } = JSON.parse(event.data) as { event_id: string }
      const committed = committedAt.get(sno === hot ? `${hot}:${id.slice('live-hot-'.length)}` : `${sno}:${id}`)
      if (committed !== undefined) delays.push(event.at - committed)
    }
  }
  t.equal(wrong, 0, 'each client: its parcel\'s changes, each once, in commit order')
  delays.sort((a, b) => a - b)
  const pct = (p: number): number => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))]
  t.comment(`${delays.length} change events to 2,000 streams; commit to delivery p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${delays.at(-1)} ms`)
})
