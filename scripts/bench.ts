import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import path from 'node:path'
import { parseArgs, promisify } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { sql } from 'kysely'
import { loadConfig, loadEnvFile } from '../src/config.js'
import { createPool } from 'mysql2'
import { createDatabase, poolOptions, type Db } from '../src/infra/db.js'
import { trackingStatementSql } from '../src/tracking/queries.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../src/db/migrator.js'
import { listHubs, seedHubs } from '../src/hubs/hubs.js'
import { OrderGenerator } from '../src/orders/generator.js'
import { autoIncrementStep, insertOrders } from '../src/writes/sql.js'
import { bulkLoadOrders } from '../src/orders/bulk.js'
import { buildSummary } from '../src/reports/summary.js'
import { ReportSchedule } from '../src/reports/slots.js'
import { startNginx, writeNginxConfig } from './lib/nginx.js'
import { summarizeProfile } from './bench/profile.js'

/**
 * npm run bench [-- --orders 100000 --duration 10 --warmup 2 --connections 10 --profile]
 *
 * Everything is measured in one run, next to a ceiling (a bare Fastify process answering a
 * constant body of the size of a real /query answer), because only ratios measured together
 * mean anything on a shared machine.
 */
const exec = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '10' },
    profile: { type: 'boolean', default: false },
    'skip-nginx': { type: 'boolean', default: false }
  }
})
const ORDERS = Number(args.orders)
const DURATION = Number(args.duration)
const WARMUP = Number(args.warmup)
let CONNECTIONS = Number(args.connections)

async function withConnections<T> (connections: number, work: () => Promise<T>): Promise<T> {
  const saved = CONNECTIONS
  CONNECTIONS = connections
  try {
    return await work()
  } finally {
    CONNECTIONS = saved
  }
}
const HOT_SET = 1000
const TOKEN = 'bench-admin-token-0123456789abcdef'

interface Row {
  scenario: string
  reqPerSec: number
  p50: number
  p99: number
  errors: number
  unexpected: number
  ratio?: number
  p99Ratio?: number
  selectsPerRequest?: number
  note?: string
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const log = (message: string): void => { process.stderr.write(`${message}\n`) }

async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function buildIfNeeded (): void {
  const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile()).reduce((m, e) => Math.max(m, statSync(path.join(e.parentPath, e.name)).mtimeMs), 0)
  const built = path.join(root, 'dist/server.js')
  if (!existsSync(built) || newest(path.join(root, 'src')) > statSync(built).mtimeMs) {
    log('building dist/ …')
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' })
  }
}

async function waitFor (url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await fetch(url).catch(() => null))?.ok === true) return
    await sleep(100)
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`)
}

async function comSelect (db: Db): Promise<number> {
  const { rows } = await sql<{ Value: string }>`SHOW GLOBAL STATUS LIKE 'Com_select'`.execute(db)
  return Number(rows[0]?.Value ?? 0)
}

type Requests = autocannon.Options['requests']

interface Target {
  name: string
  url: string
  expectStatus: number
  requests?: () => Requests
  headers?: Record<string, string>
}

interface Measured { requests: number, seconds: number, p50: number, p99: number, errors: number, unexpected: number, selects: number }

async function load (target: Target, seconds: number): Promise<autocannon.Result> {
  return await autocannon({ url: target.url, connections: CONNECTIONS, duration: seconds, requests: target.requests?.(), headers: target.headers })
}

/** One slice of load; latency percentiles are kept per slice and averaged by request count. */
async function slice (db: Db, target: Target, seconds: number): Promise<Measured> {
  const before = await comSelect(db)
  const result = await load(target, seconds)
  const expected = Number(result.statusCodeStats?.[String(target.expectStatus) as `${number}`]?.count ?? 0)
  return {
    requests: result.requests.total,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    unexpected: result.requests.total - expected,
    selects: await comSelect(db) - before
  }
}

function toRow (name: string, slices: Measured[]): Row {
  const requests = slices.reduce((n, m) => n + m.requests, 0)
  const weighted = (pick: (m: Measured) => number): number => Math.round(slices.reduce((sum, m) => sum + pick(m) * m.requests, 0) / Math.max(requests, 1) * 100) / 100
  const row: Row = {
    scenario: name,
    reqPerSec: Math.round(requests / slices.reduce((sum, m) => sum + m.seconds, 0)),
    p50: weighted((m) => m.p50),
    p99: weighted((m) => m.p99),
    errors: slices.reduce((n, m) => n + m.errors, 0),
    unexpected: slices.reduce((n, m) => n + m.unexpected, 0),
    selectsPerRequest: Math.round(slices.reduce((n, m) => n + m.selects, 0) / Math.max(requests, 1) * 100) / 100
  }
  log(`  ${name}: ${row.reqPerSec} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, errors ${row.errors}, unexpected ${row.unexpected}`)
  return row
}

/**
 * Targets measured in turns (A, B, A, B, …) after a warm-up, so that the machine's drift
 * (other tenants, thermal, page cache) falls on all of them alike.
 */
async function compare (db: Db, targets: Target[], rounds = 5): Promise<Row[]> {
  for (const target of targets) if (WARMUP > 0) await load(target, WARMUP)
  const slices = targets.map(() => [] as Measured[])
  for (let r = 0; r < rounds; r++) {
    for (const [i, target] of targets.entries()) slices[i].push(await slice(db, target, DURATION / rounds))
  }
  return targets.map((target, i) => toRow(target.name, slices[i]))
}

/** `CONNECTIONS` loops each running `once` back to back for DURATION seconds, as a bare client would. */
async function bareLoops (name: string, once: () => Promise<unknown>, selectsPerRequest: number): Promise<Row> {
  let done = 0
  const latencies: number[] = []
  const until = performance.now() + DURATION * 1000
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) {
      const started = performance.now()
      await once()
      latencies.push(performance.now() - started)
      done += 1
    }
  }))
  latencies.sort((a, b) => a - b)
  const at = (p: number): number => Math.round(latencies[Math.floor(p * (latencies.length - 1))] * 100) / 100
  const row: Row = { scenario: name, reqPerSec: Math.round(done / DURATION), p50: at(0.5), p99: at(0.99), errors: 0, unexpected: 0, selectsPerRequest }
  log(`  ${row.scenario}: ${row.reqPerSec}/s, p50 ${row.p50} ms, p99 ${row.p99} ms`)
  return row
}

/**
 * What the services themselves give at the same concurrency, from bare clients in this process:
 * MySQL alone with the miss statement for one order, and a miss's two round trips in turn (the
 * Redis lookup, then that statement) with no HTTP and no batching: the floor a miss stands on.
 */
async function servicesAlone (config: ReturnType<typeof loadConfig>, db: Db, firstSno: number): Promise<Row[]> {
  const pool = createPool({ ...poolOptions(config.db), connectionLimit: CONNECTIONS })
  const redis = new Redis(config.redis.url, { keyPrefix: 'bench-alone:' })
  const statement = trackingStatementSql(db)
  // Real orders only (an unknown sno is a cheaper statement): wrap around past the last one.
  let n = 0
  const nextSno = (): number => HOT_SET + 1 + (firstSno - HOT_SET - 1 + n++) % (ORDERS - HOT_SET)
  const select = async (sno: number): Promise<unknown> => await new Promise((resolve, reject) => pool.query(statement, [sno], (err, rows) => err === null ? resolve(rows) : reject(err)))
  try {
    return [
      await bareLoops('MySQL alone: one order per statement via mysql2', async () => await select(nextSno()), 1),
      await bareLoops('Redis MGET, then that statement, in turn (no HTTP)', async () => {
        const sno = nextSno()
        await redis.mget(`track:v1:{${sno}}`, `track:v1:{${sno}}:gen`)
        await select(sno)
      }, 1)
    ]
  } finally {
    redis.disconnect()
    await new Promise((resolve) => pool.end(resolve))
  }
}

/**
 * /fake's transaction with nothing around it: the same 100-order writes from drafts made
 * beforehand, over `CONNECTIONS` connections, with no HTTP and no data generation. Its p50 is
 * the floor for /fake's at the same concurrency on this machine.
 */
async function fakeTransactionAlone (db: Db): Promise<Row> {
  const generator = new OrderGenerator(2)
  const hubs = await listHubs(db)
  const drafts = Array.from({ length: 20 }, () => Array.from({ length: 100 }, () => generator.draft(hubs, new Date())))
  const idStep = await autoIncrementStep(db)
  let i = 0
  return await bareLoops('the /fake transaction alone (no HTTP, data made beforehand)', async () =>
    await db.transaction().execute(async (trx) => await insertOrders(trx, drafts[i++ % drafts.length], { idStep })), 0)
}

async function scenario (db: Db, target: Target): Promise<Row> {
  return (await compare(db, [target], 1))[0]
}

/** Each connection walks through its own part of a sequence of paths. */
function sequence (next: () => string): () => Requests {
  return () => [{ method: 'GET', setupRequest: (request: autocannon.Request) => ({ ...request, path: next() }) }] as Requests
}

function spawnProcess (command: string, argv: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, argv, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  child.unref()
  return child
}

async function stopProcess (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return
  await new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGINT')
  })
}

function peakRssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
}

function table (rows: Row[]): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-expected', 'vs ceiling req/s', 'vs ceiling p99', 'SELECTs/req']
  const lines = rows.map((r) => [r.scenario, String(r.reqPerSec), String(r.p50), String(r.p99), String(r.errors), String(r.unexpected),
    r.ratio === undefined ? '' : r.ratio.toFixed(2), r.p99Ratio === undefined ? '' : `${r.p99Ratio.toFixed(2)}×`, r.selectsPerRequest === undefined ? '' : String(r.selectsPerRequest)])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ')} |`
  return [fmt(header), `|${widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`).join('|')}|`, ...lines.map(fmt)].join('\n')
}

async function main (): Promise<void> {
  loadEnvFile()
  buildIfNeeded()
  const base = loadConfig()
  const dbUrl = new URL(base.db.url)
  dbUrl.pathname = '/logistics_bench'
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: base.redis.url,
    REDIS_KEY_PREFIX: 'bench:',
    // The limiter runs on every request, as in production, with limits no single client reaches here.
    RATE_LIMIT_PER_MINUTE: '10000000',
    RATE_LIMIT_NOT_FOUND_PER_MINUTE: '10000000',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true'
  }
  const config = loadConfig({ ...process.env, ...env })
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
    settings: { orders: ORDERS, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS }
  }

  // 1. Data: its own database, the seeding rate, and one report summary.
  log(`preparing database logistics_bench with ${ORDERS} orders …`)
  await dropDatabase(config.db)
  await ensureDatabase(config.db)
  const handle = createDatabase({ ...config.db, queryTimeoutMs: 0 })
  const db = handle.db
  await migrateToLatest(db)
  await seedHubs(db)
  let started = performance.now()
  const seeded = await bulkLoadOrders(db, { count: ORDERS, seed: 1 })
  const seedSeconds = (performance.now() - started) / 1000
  const schedule = new ReportSchedule(config.reports.cron, config.reports.timezone)
  started = performance.now()
  const slot = schedule.latest()
  await buildSummary(db, slot, schedule.previous(slot))
  const summaryMs = Math.round(performance.now() - started)
  results.seeding = { orders: seeded.orders, events: seeded.events, seconds: Math.round(seedSeconds * 10) / 10, ordersPerSecond: Math.round(seeded.orders / seedSeconds) }
  results.reportSummaryMs = summaryMs
  log(`  seeded ${seeded.orders} orders (${seeded.events} events) at ${Math.round(seeded.orders / seedSeconds)} orders/s; report summary in ${summaryMs} ms`)

  const redis = new Redis(config.redis.url)
  const flushCache = async (): Promise<void> => {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'bench:*', 'COUNT', 5000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  }
  await flushCache()

  // 2. One API process and the ceiling, side by side.
  const [apiPort, ceilingPort] = [await freePort(), await freePort()]
  const profileDir = path.join(root, 'bench/results/profiles')
  if (args.profile) await mkdir(profileDir, { recursive: true })
  let api = spawnProcess(process.execPath, [...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), 'dist/server.js'], { ...env, PORT: String(apiPort) })
  const apiUrl = `http://127.0.0.1:${apiPort}`
  await waitFor(`${apiUrl}/`)
  const samples = await Promise.all(Array.from({ length: 50 }, async (_, i) => await (await fetch(`${apiUrl}/query?sno=${i + 1}`)).text()))
  const typical = samples.sort((a, b) => a.length - b.length)[25]
  await flushCache()
  const ceiling = spawnProcess(process.execPath, ['scripts/bench/ceiling.js'], { PORT: String(ceilingPort), CEILING_BODY: typical })
  await waitFor(`http://127.0.0.1:${ceilingPort}/query`)
  results.bodyBytes = Buffer.byteLength(typical)
  log(`single process (connections ${CONNECTIONS}, ${WARMUP} s warm-up + ${DURATION} s each); typical answer ${Buffer.byteLength(typical)} bytes`)

  const rows: Row[] = []
  for (let sno = 1; sno <= HOT_SET; sno++) await fetch(`${apiUrl}/query?sno=${sno}`)
  // Both driven by the same request sequence, so the load generator does the same work for each.
  let hot = 0
  let hotCeiling = 0
  const [ceilingRow, hit] = await compare(db, [
    { name: 'ceiling (bare Fastify, constant body)', url: `http://127.0.0.1:${ceilingPort}`, expectStatus: 200, requests: sequence(() => `/query?sno=${(hotCeiling++ % HOT_SET) + 1}`) },
    { name: `/query hit (hot set of ${HOT_SET})`, url: apiUrl, expectStatus: 200, requests: sequence(() => `/query?sno=${(hot++ % HOT_SET) + 1}`) }
  ])
  rows.push(ceilingRow, hit)
  results.apiPeakRssMbUnderHitLoad = peakRssMb(api.pid as number)

  let profile: string | undefined
  if (args.profile) {
    // The profile is written when the process exits: stop it, read it, start a fresh one.
    await stopProcess(api)
    profile = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profileDir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
    log(`\nCPU profile of the hit load: ${profile}\n${summarizeProfile(profile, 25)}\n`)
    api = spawnProcess(process.execPath, ['dist/server.js'], { ...env, PORT: String(apiPort) })
    await waitFor(`${apiUrl}/`)
  }

  await flushCache()
  let cold = HOT_SET + 1
  const miss = await scenario(db, { name: '/query miss (each a new order, cold cache)', url: apiUrl, expectStatus: 200, requests: sequence(() => `/query?sno=${cold++}`) })
  if (cold > ORDERS) miss.note = `ran past the ${ORDERS} orders: some requests were not misses`
  rows.push(miss)
  // What MySQL itself gives for the miss statement at the same concurrency, from a bare mysql2
  // pool in this process: the ceiling for misses on this machine.
  rows.push(...await servicesAlone(config, db, cold + 1000))

  let unknown = ORDERS + 1_000_000
  const unknownRow = await scenario(db, { name: '/query unknown sno (each a new one)', url: apiUrl, expectStatus: 404, requests: sequence(() => `/query?sno=${unknown++}`) })
  let repeated = 0
  const repeatedRow = await scenario(db, { name: '/query unknown sno (100 repeated)', url: apiUrl, expectStatus: 404, requests: sequence(() => `/query?sno=${ORDERS + 500_000 + (repeated++ % 100)}`) })
  const fakeTarget = { name: '/fake?num=100', url: `${apiUrl}/fake?num=100`, expectStatus: 200, headers: { authorization: `Bearer ${TOKEN}` } }
  const fake = await scenario(db, fakeTarget)
  // The same request one at a time: its own latency, without queueing behind nine others.
  const fakeAlone = await withConnections(1, async () => await scenario(db, { ...fakeTarget, name: '/fake?num=100 (1 connection)' }))
  rows.push(unknownRow, repeatedRow, fake, fakeAlone, await fakeTransactionAlone(db))
  for (const row of rows.slice(1)) {
    row.ratio = row.reqPerSec / ceilingRow.reqPerSec
    row.p99Ratio = row.p99 / Math.max(ceilingRow.p99, 1)
  }
  await stopProcess(api)
  await stopProcess(ceiling)

  // 3. Production shape: PM2 cluster (2 processes) behind nginx, next to the ceiling behind nginx.
  if (!args['skip-nginx'] && existsSync('/usr/sbin/nginx')) {
    const home = await mkdtemp(path.join(tmpdir(), 'lt-bench-pm2-'))
    const pm2 = async (...argv: string[]): Promise<void> => { await exec(path.join(root, 'node_modules/.bin/pm2'), argv, { cwd: root, env: { ...process.env, ...env, PM2_HOME: home, PORT: String(apiPort), API_INSTANCES: '2' } }) }
    const [nginxApi, nginxCeiling, clusterCeiling] = [await freePort(), await freePort(), await freePort()]
    const nginxConf = await writeNginxConfig([{ listen: nginxApi, upstream: apiPort }, { listen: nginxCeiling, upstream: clusterCeiling }])
    try {
      await pm2('start', 'ecosystem.config.js', '--only', 'api')
      await exec(path.join(root, 'node_modules/.bin/pm2'), ['start', 'scripts/bench/ceiling.js', '--name', 'ceiling', '-i', '2'], {
        cwd: root, env: { ...process.env, PM2_HOME: home, PORT: String(clusterCeiling), CEILING_BODY: typical }
      })
      const nginx = startNginx(nginxConf.conf, nginxConf.dir)
      await waitFor(`http://127.0.0.1:${nginxApi}/`)
      await waitFor(`http://127.0.0.1:${nginxCeiling}/query`)
      for (let sno = 1; sno <= HOT_SET; sno++) await fetch(`http://127.0.0.1:${nginxApi}/query?sno=${sno}`)
      log('PM2 cluster ×2 behind nginx')
      let hotNginx = 0
      let hotNginxCeiling = 0
      const [viaCeiling, viaHit] = await compare(db, [
        { name: 'nginx → ceiling (PM2 ×2)', url: `http://127.0.0.1:${nginxCeiling}`, expectStatus: 200, requests: sequence(() => `/query?sno=${(hotNginxCeiling++ % HOT_SET) + 1}`) },
        { name: 'nginx → /query hit (PM2 ×2)', url: `http://127.0.0.1:${nginxApi}`, expectStatus: 200, requests: sequence(() => `/query?sno=${(hotNginx++ % HOT_SET) + 1}`) }
      ])
      viaHit.ratio = viaHit.reqPerSec / viaCeiling.reqPerSec
      viaHit.p99Ratio = viaHit.p99 / Math.max(viaCeiling.p99, 1)
      rows.push(viaCeiling, viaHit)
      await nginx.stop()
    } finally {
      await pm2('kill').catch(() => {})
      await rm(home, { recursive: true, force: true })
      await rm(nginxConf.dir, { recursive: true, force: true })
    }
  }

  redis.disconnect()
  await handle.close()

  results.rows = rows
  results.profile = profile
  const targets = {
    'hit ≥ 0.80 ceiling': (hit.ratio ?? 0) >= 0.8,
    'hit p99 ≤ 2× ceiling': (hit.p99Ratio ?? Infinity) <= 2,
    'hit without errors': hit.errors === 0 && hit.unexpected === 0,
    'miss ≥ 0.35 ceiling': (miss.ratio ?? 0) >= 0.35,
    'unknown no dearer than miss': unknownRow.reqPerSec >= miss.reqPerSec * 0.95,
    'repeated unknown spare MySQL': (repeatedRow.selectsPerRequest ?? 1) < 0.01,
    '/fake p50 ≤ 50 ms': fake.p50 <= 50,
    '/fake p50 ≤ 50 ms (1 connection)': fakeAlone.p50 <= 50,
    'RSS ≤ 150 MB': (results.apiPeakRssMbUnderHitLoad as number) <= 150
  }
  results.targets = targets
  const file = path.join(root, 'bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify(results, null, 2))

  console.log(`\n${table(rows)}\n`)
  const seeding = results.seeding as { orders: number, ordersPerSecond: number }
  console.log(`seeding: ${seeding.orders} orders at ${seeding.ordersPerSecond} orders/s; report summary over them: ${summaryMs} ms`)
  console.log(`API process peak RSS under the hit load: ${results.apiPeakRssMbUnderHitLoad as number} MB; typical /query answer: ${results.bodyBytes as number} bytes`)
  console.log(`targets: ${Object.entries(targets).map(([k, ok]) => `${k}: ${ok ? 'met' : 'MISSED'}`).join('; ')}`)
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; results: ${path.relative(root, file)}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
