import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { loadConfig, loadEnvFile } from '../../src/config.js'
import { createDatabase } from '../../src/infra/db.js'
import { ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { seedHubs } from '../../src/hubs/hubs.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { freePort } from '../lib/ports.js'
import { cpuSeconds, pinWrk, wrk, wrkAvailable } from './wrk.js'
import { API_NODE_ARGS, benchApiEnv, median, waitFor } from './common.js'

/**
 * npm run bench:side [-- --targets ceiling,node-headers-real,api --rounds 8 --seconds 3 --pin]
 *
 * A few servers side by side, driven in turns by wrk over the hot set of 1,000 (`--rounds` rounds
 * of `--seconds` each), printing each one's rate, p99 and CPU per request as the median over the
 * rounds of its ratio to the first target. For finding where the hit's time goes, one variable at
 * a time; `npm run bench` stays the reference. `--pin` puts every server on core 0 and wrk on core
 * 1, so that they never take turns on one core. Targets:
 *   ceiling, ceiling-headers, ceiling-real    bare Fastify (scripts/bench/ceiling.js): a constant
 *                                             body, with our six headers, the hot set's real answers
 *   node, node-headers, node-headers-real     the same from bare node:http (CEILING_SERVER=node)
 *   api                                       dist/server.js (the /query hit)
 *   api=DIR                                   DIR/dist/server.js: another build of the API, for an A/B:
 *                                             mkdir -p bench/builds/base && cp -r dist package.json bench/builds/base/
 *                                             && ln -s ../../../migrations ../../../src bench/builds/base/
 *                                             (inside the repository, so that node_modules is found)
 * Data: the database logistics_bench (`npm run bench` leaves it), seeded with 20,000 orders when absent.
 */
const { values: args } = parseArgs({
  options: {
    targets: { type: 'string', default: 'ceiling,ceiling-headers,node-headers,node-headers-real,api' },
    rounds: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '3' },
    pin: { type: 'boolean', default: false }
  }
})
const root = new URL('../..', import.meta.url).pathname
const HOT_SET = 1000
const paths = { prefix: '/query?sno=', first: 1, count: HOT_SET }

interface Target { name: string, port: number, child?: ChildProcess, rates: number[], p99s: number[], cpu: number[] }

function start (command: string[], env: Record<string, string>): ChildProcess {
  const argv = [...(args.pin ? ['taskset', '-c', '0'] : []), process.execPath, ...API_NODE_ARGS, ...command]
  const child = spawn(argv[0], argv.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  child.unref()
  return child
}

const TARGET = /^api(=.+)?$|^(ceiling|node)(-headers)?(-real)?$/

async function main (): Promise<void> {
  loadEnvFile()
  if (!wrkAvailable()) throw new Error('wrk is not installed: apt-get install -y wrk')
  const names = args.targets.split(',')
  const unknown = names.filter((name) => !TARGET.test(name))
  if (unknown.length > 0) throw new Error(`unknown target ${unknown.join(', ')}: api, api=DIR, ceiling, node, each of the last two with -headers and/or -real`)
  const children: ChildProcess[] = []
  const dir = await mkdtemp(path.join(tmpdir(), 'lt-side-bodies-'))
  try {
    await measure(names, children, dir)
  } finally {
    for (const child of children) child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}

async function measure (names: string[], children: ChildProcess[], dir: string): Promise<void> {
  if (args.pin) pinWrk(1)
  const env = benchApiEnv(loadConfig(), 'bench-side:', 'side-by-side-admin-token-0123456789')
  const config = loadConfig({ ...process.env, ...env })
  await ensureDatabase(config.db)
  const handle = createDatabase({ ...config.db, queryTimeoutMs: 0 })
  await migrateToLatest(handle.db)
  const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders`.execute(handle.db)
  if (Number(rows[0]?.n ?? 0) < HOT_SET) {
    await seedHubs(handle.db)
    await bulkLoadOrders(handle.db, { count: 20_000, seed: 1 })
  }
  await handle.close()

  // The hot set's real answers, from an API process of our own.
  const port = await freePort()
  const probe = start(['dist/server.js'], { ...env, PORT: String(port) })
  children.push(probe)
  await waitFor(`http://127.0.0.1:${port}/`, 60_000)
  const bodies: string[] = []
  for (let sno = 1; sno <= HOT_SET; sno++) bodies.push(await (await fetch(`http://127.0.0.1:${port}/query?sno=${sno}`)).text())
  probe.kill('SIGINT')
  const bodiesFile = path.join(dir, 'hot-set.json')
  await writeFile(bodiesFile, JSON.stringify(bodies))
  const typical = bodies[HOT_SET / 2]

  const targets: Target[] = []
  for (const name of names) {
    const target: Target = { name, port: await freePort(), rates: [], p99s: [], cpu: [] }
    const ceilingEnv = {
      PORT: String(target.port),
      CEILING_BODY: typical,
      CEILING_SERVER: name.startsWith('node') ? 'node' : 'fastify',
      ...(name.includes('headers') ? { CEILING_HEADERS: '1' } : {}),
      ...(name.endsWith('real') ? { CEILING_BODIES_FILE: bodiesFile } : {})
    }
    const api = name.startsWith('api')
    const server = name === 'api' ? 'dist/server.js' : path.join(name.slice('api='.length), 'dist/server.js')
    target.child = api ? start([server], { ...env, PORT: String(target.port) }) : start(['scripts/bench/ceiling.js'], ceilingEnv)
    children.push(target.child)
    await waitFor(`http://127.0.0.1:${target.port}/query?sno=1`, 60_000)
    if (api) for (let sno = 1; sno <= HOT_SET; sno++) await fetch(`http://127.0.0.1:${target.port}/query?sno=${sno}`)
    targets.push(target)
  }
  const url = (t: Target): string => `http://127.0.0.1:${t.port}`
  for (const t of targets) await wrk({ url: url(t), paths, connections: 50, threads: 1, seconds: 2 })
  for (let round = 1; round <= Number(args.rounds); round++) {
    for (const t of targets) {
      const before = cpuSeconds([t.child?.pid as number])
      const result = await wrk({ url: url(t), paths, connections: 50, threads: 1, seconds: Number(args.seconds) })
      if (result.errors > 0 || result.non2xx > 0) console.log(`  ${t.name}: ${result.errors} errors, ${result.non2xx} non-2xx`)
      t.rates.push(result.requests / result.seconds)
      t.p99s.push(result.p99)
      t.cpu.push((cpuSeconds([t.child?.pid as number]) - before) * 1e6 / Math.max(result.requests, 1))
    }
    console.log(`round ${round}: ${targets.map((t) => `${t.name} ${Math.round(t.rates.at(-1) ?? 0)}`).join(', ')}`)
  }
  const [reference] = targets
  console.log(`\n| target | req/s | ratio to ${reference.name} | p99 ms | p99 ratio | server CPU µs/req |\n|---|---:|---:|---:|---:|---:|`)
  for (const t of targets) {
    const ratio = median(t.rates.map((r, i) => r / reference.rates[i]))
    const p99Ratio = median(t.p99s.map((p, i) => p / reference.p99s[i]))
    console.log(`| ${t.name} | ${Math.round(median(t.rates))} | ${ratio.toFixed(2)} | ${median(t.p99s).toFixed(2)} | ${p99Ratio.toFixed(2)}× | ${median(t.cpu).toFixed(1)} |`)
  }
  console.log(`\n${args.rounds} rounds of wrk -t1 -c50 -d${args.seconds}s in turns${args.pin ? '; servers on core 0, wrk on core 1' : ''}; medians over the rounds`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
