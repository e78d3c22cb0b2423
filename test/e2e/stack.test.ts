import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import autocannon from 'autocannon'
import { connect } from 'amqplib'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { nginxTest, startNginx, writeNginxConfig } from '../helpers/nginx.js'
import { eventually } from '../helpers/app.js'
import { shapeDifferences, QUERY_EXAMPLE } from '../helpers/contract.js'

/**
 * The production stack on loopback: PM2 (private PM2_HOME) running the ecosystem file (API in
 * cluster mode, the worker, the embedded S3 store) behind nginx with the shipped site config.
 */
const exec = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname
const pm2 = path.join(root, 'node_modules/.bin/pm2')
if (!existsSync(path.join(root, 'dist/server.js'))) throw new Error('dist/ is missing: npm test builds it first (npm run build)')

const token = 'e2e-admin-token-0123456789abcdef'
const [apiPort, s3Port, nginxPort] = [await freePort(), await freePort(), await freePort()]
const config = testConfig('e2e_stack')
await freshDatabase(t, config)
await clearKeys(t, config)
const home = await mkdtemp(path.join(tmpdir(), 'lt-pm2-'))
const s3Dir = await mkdtemp(path.join(tmpdir(), 'lt-e2e-s3-'))
const env = {
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
  S3_LOCAL_PORT: String(s3Port),
  S3_LOCAL_DIR: s3Dir,
  REPORT_TIMEZONE: 'Asia/Taipei',
  LOG_LEVEL: 'warn',
  SHUTDOWN_TIMEOUT_MS: '3000',
  RATE_LIMIT_PER_MINUTE: '1000000',
  RATE_LIMIT_NOT_FOUND_PER_MINUTE: '1000000',
  S3_LOCAL_ACCESS_KEY_ID: 'e2e-stack-key',
  S3_LOCAL_SECRET_ACCESS_KEY: 'e2e-stack-secret-0123456789',
  // Its own broker session, topics and queue on the shared Mosquitto and RabbitMQ.
  MQTT_CLIENT_ID: `lt-e2e-stack-${process.pid}`,
  MQTT_TOPIC_PREFIX: 'lt-e2e-stack',
  AMQP_QUEUE: `lt.e2e_stack.${process.pid}.events`
}
delete (env as Record<string, string | undefined>).S3_BUCKET
delete (env as Record<string, string | undefined>).S3_ENDPOINT
delete (env as Record<string, string | undefined>).S3_REGION

const pm2Run = async (...args: string[]): Promise<string> => (await exec(pm2, args, { cwd: root, env, timeout: 60_000 })).stdout
t.teardown(async () => {
  await pm2Run('kill').catch(() => {})
  // The consumer declared its queues on the shared broker: they go with the test.
  const broker = await connect(process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672').catch(() => undefined)
  if (broker !== undefined) {
    const channel = await broker.createChannel()
    for (const queue of [env.AMQP_QUEUE, `${env.AMQP_QUEUE}.dead`]) await channel.deleteQueue(queue).catch(() => {})
    await broker.close().catch(() => {})
  }
  await rm(home, { recursive: true, force: true })
  await rm(s3Dir, { recursive: true, force: true })
})

const { dir, conf } = await writeNginxConfig(t, nginxPort, apiPort)
await startNginx(t, conf, dir)
const base = `http://127.0.0.1:${nginxPort}`
const auth = { authorization: `Bearer ${token}` }

t.test('nginx -t accepts the shipped config', async (t) => {
  const result = await nginxTest(conf, dir)
  t.ok(result.ok, result.output)
})

t.test('PM2 runs the API (cluster), the worker, the queue consumer, the fleet subscriber and the local S3 store', async (t) => {
  await pm2Run('start', 'ecosystem.config.js')
  const list = JSON.parse(await pm2Run('jlist')) as Array<{ name: string, pm2_env: { status: string, exec_mode: string } }>
  const { apps } = await import(new URL('../../ecosystem.config.js', import.meta.url).href) as { apps: Array<{ name: string }> }
  const expected = apps.flatMap((a) => a.name === 'api' ? ['api', 'api'] : [a.name]).sort()
  t.same(list.map((p) => p.name).sort(), expected, `every app of the ecosystem file runs (${expected.join(', ')})`)
  t.ok(['api', 'worker', 's3-local', 'fleet'].every((name) => expected.includes(name)))
  t.ok(list.filter((p) => p.name === 'api').every((p) => p.pm2_env.exec_mode === 'cluster_mode'))
  t.ok(await eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 90_000), 'healthy through nginx')
})

let snos: number[] = []

t.test('data made and read through nginx', async (t) => {
  t.equal((await fetch(`${base}/fake?num=5`)).status, 401, 'production: /fake needs the token')
  const made = await fetch(`${base}/fake?num=5`, { headers: auth })
  t.equal(made.status, 200)
  snos = ((await made.json()) as { data: Array<{ sno: number }> }).data.map((o) => o.sno)
  t.equal(snos.length, 5)

  const res = await fetch(`${base}/query?sno=${snos[0]}`)
  t.equal(res.status, 200)
  t.match(res.headers.get('x-request-id'), /^[0-9a-f]{32}$/, 'nginx\'s request id, echoed by the API')
  t.same(shapeDifferences(await res.json(), QUERY_EXAMPLE), [])
  const big = await fetch(`${base}/fake?num=100`, { headers: { ...auth, 'accept-encoding': 'gzip' } })
  t.equal(big.headers.get('content-encoding'), 'gzip', 'JSON is gzipped by nginx')
  await big.arrayBuffer()
  const missing = await fetch(`${base}/query?sno=99999999`)
  t.equal(missing.status, 404)
  t.equal(((await missing.json()) as { code: string }).code, 'TRACKING_NOT_FOUND')
})

t.test('a report made with npm run report is listed and downloaded through nginx', async (t) => {
  const { stdout } = await exec('npm', ['run', '--silent', 'report'], { cwd: root, env, timeout: 120_000 })
  const key = /(reports\/\d{4}-\d{2}-\d{2}\/\d{4}-summary\.json)/.exec(stdout)?.[1]
  t.ok(key, stdout)
  const listed = await fetch(`${base}/reports`, { headers: auth })
  t.equal(listed.status, 200)
  const { reports } = await listed.json() as { reports: Array<{ key: string, url: string }> }
  t.ok(reports.some((r) => r.key === key), 'listed')
  t.equal((await fetch(`${base}/reports`)).status, 401, 'the list needs the token')

  const exportKey = (key as string).replace('-summary.json', '-orders.csv.gz')
  const direct = await fetch(`${base}/${exportKey}`, { headers: auth })
  t.equal(direct.status, 200, 'streamed through the API to the token holder')
  const rows = gunzipSync(Buffer.from(await direct.arrayBuffer())).toString('utf8').trim().split('\n')
  t.equal(rows.length, 1 + 105, 'every order in the export')
  const redirect = await fetch(`${base}/${exportKey}?redirect=1`, { headers: auth, redirect: 'manual' })
  t.equal(redirect.status, 302)
  const download = await fetch(redirect.headers.get('location') as string)
  t.equal(download.status, 200, 'the presigned URL works without the token')
  await download.arrayBuffer()
})

t.test('pm2 reload under load drops no request', async (t) => {
  const load = autocannon({ url: `${base}/query?sno=${snos[1]}`, connections: 20, duration: 6 })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await pm2Run('reload', 'api')
  const result = await load
  t.ok(result.requests.total > 1000, `${result.requests.total} requests during the reload`)
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.non2xx, 0, `no non-2xx answers (by status: ${JSON.stringify(result.statusCodeStats)})`)
  t.equal(result.timeouts, 0, 'no timeouts')
  t.comment(`reload under load: ${result.requests.total} requests, ${result.errors} errors, ${result.non2xx} non-2xx, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`)
})
