import t from 'tap'
import { sql } from 'kysely'
import { buildApp } from '../../src/app.js'
import { createDatabase } from '../../src/infra/db.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { eventually } from '../helpers/app.js'

/**
 * MySQL unreachable, cut, frozen and slow, through a TCP proxy in front of the shared MariaDB
 * (never by stopping it). "Fails fast" is checked against a generous limit: without the
 * bounds, these requests would wait for the OS TCP timeout (minutes) or for ever.
 */
const HANG = 8000
const direct = testConfig('infra_mysql_faults')
const { db } = await freshDatabase(t, direct)
const proxy = await TcpProxy.start(t, direct.db.port)
const url = new URL(direct.db.url)
url.port = String(proxy.port)
const config = testConfig('infra_mysql_faults', {
  DATABASE_URL: url.toString(),
  DB_CONNECT_TIMEOUT_MS: '500',
  DB_ACQUIRE_TIMEOUT_MS: '700',
  DB_QUERY_TIMEOUT_MS: '600',
  DB_POOL_SIZE: '4',
  DB_QUEUE_LIMIT: '20',
  RATE_LIMIT_PER_MINUTE: '0'
})
const redis = await clearKeys(t, config)
const app = await buildApp(config)
t.teardown(async () => await app.close())
const cached = await insertKnownOrder(db)
const uncached = await insertKnownOrder(db)

t.test('setup: one order in the cache', async (t) => {
  t.equal((await app.inject(`/query?sno=${cached.sno}`)).statusCode, 200)
  t.ok(await eventually(async () => await redis.exists(`${config.redis.keyPrefix}track:v1:{${cached.sno}}`) === 1))
})

async function timed (path: string): Promise<{ status: number, code?: string, retryAfter?: string, ms: number }> {
  const started = performance.now()
  const res = await Promise.race([
    app.inject(path),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${path} hung for ${HANG} ms`)), HANG))
  ])
  const body = res.headers['content-type']?.toString().includes('json') === true ? res.json() : {}
  return { status: res.statusCode, code: body.code, retryAfter: res.headers['retry-after'] as string | undefined, ms: performance.now() - started }
}

for (const fault of ['refuse', 'blackhole'] as const) {
  t.test(`MySQL ${fault === 'refuse' ? 'unreachable (connections cut, new ones refused)' : 'frozen (nothing comes back)'}`, async (t) => {
    if (fault === 'refuse') await proxy.refuse()
    else proxy.blackhole()

    const hit = await timed(`/query?sno=${cached.sno}`)
    t.equal(hit.status, 200, 'a cached answer is still served')

    const misses = await Promise.all(Array.from({ length: 30 }, async (_, i) => await timed(`/query?sno=${uncached.sno + 100 + i}`)))
    t.ok(misses.every((r) => r.status === 503 && r.code === 'DATABASE_UNAVAILABLE'), `30 concurrent misses: 503 DATABASE_UNAVAILABLE (${[...new Set(misses.map((r) => `${r.status} ${r.code}`))].join(', ')})`)
    t.ok(misses.every((r) => r.retryAfter === '5'), 'with Retry-After')
    const fake = await timed('/fake?num=2')
    t.equal(fake.status, 503, '/fake: 503')
    t.equal(fake.code, 'DATABASE_UNAVAILABLE')
    const health = await timed('/health')
    t.equal(health.status, 503)
    t.comment(`${fault}: misses answered 503 within ${Math.max(...misses.map((r) => r.ms)).toFixed(0)} ms, /fake ${fake.ms.toFixed(0)} ms, /health ${health.ms.toFixed(0)} ms`)

    await proxy.restore()
    t.ok(await eventually(async () => (await timed(`/query?sno=${uncached.sno}`)).status === 200, 10_000), 'recovers by itself once MySQL is back')
    t.equal((await timed('/fake?num=2')).status, 200, '/fake works again')
  })
}

t.test('a slow statement is cut off at DB_QUERY_TIMEOUT_MS and its connection replaced', async (t) => {
  const handle = createDatabase(config.db)
  t.teardown(async () => await handle.close())
  const started = performance.now()
  const err = await sql`SELECT SLEEP(5)`.execute(handle.db).then(() => null, (e: unknown) => e as { code?: string, errno?: number })
  const ms = performance.now() - started
  t.ok(err !== null, 'the statement failed')
  t.ok(err?.code === 'PROTOCOL_SEQUENCE_TIMEOUT' || err?.errno === 1969, `timed out (${err?.code ?? ''} ${err?.errno ?? ''})`)
  t.ok(ms < 4000, `after ${ms.toFixed(0)} ms, not 5 s`)
  const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(handle.db)
  t.equal(rows[0].one, 1, 'the pool works afterwards')
})

t.test('slow MySQL (every packet delayed): answers still come, within the statement limit', async (t) => {
  proxy.latencyMs = 100
  t.teardown(() => { proxy.latencyMs = 0 })
  const res = await timed(`/query?sno=${uncached.sno}`)
  t.ok([200, 503].includes(res.status), `slow but bounded: ${res.status} in ${res.ms.toFixed(0)} ms`)
  proxy.latencyMs = 1000
  const tooSlow = await timed(`/query?sno=${uncached.sno + 5000}`)
  t.equal(tooSlow.status, 503, 'a database slower than the limit gives 503, not a hang')
})
