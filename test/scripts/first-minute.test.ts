import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/app.js'

/** What a new user sees when a dependency is missing, and a restart that does not rebuild everything. */
const root = new URL('../..', import.meta.url).pathname

t.test('db:migrate with MySQL unreachable says which server and which variable', async (t) => {
  const port = await freePort()
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', DATABASE_URL: `mysql://root@127.0.0.1:${port}/nowhere` },
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(result.status, 1)
  t.match(result.stderr, new RegExp(`MySQL at 127\\.0\\.0\\.1:${port} \\(user root, database nowhere\\) is not reachable \\(ECONNREFUSED\\)`))
  t.match(result.stderr, /DATABASE_URL/)
})

t.test('the API started with MySQL and Redis unreachable says so, and answers 503', async (t) => {
  const [port, dbPort, redisPort] = [await freePort(), await freePort(), await freePort()]
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', PORT: String(port), DATABASE_URL: `mysql://root@127.0.0.1:${dbPort}/nowhere`, REDIS_URL: `redis://127.0.0.1:${redisPort}/0` },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  t.ok(await eventually(() => output.includes('DATABASE_URL') && output.includes('REDIS_URL'), 90_000), 'both named in the log')
  t.match(output, new RegExp(`MySQL at 127\\.0\\.0\\.1:${dbPort}.*not reachable`))
  t.match(output, new RegExp(`Redis at 127\\.0\\.0\\.1:${redisPort} is not reachable`))
  const health = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(health.status, 503)
})

t.test('the worker started before its S3 store warns that it waits for it, naming the bucket', async (t) => {
  // The embedded store's port, with nothing listening: as under PM2 before s3-local is up.
  const s3Port = await freePort()
  const child = spawn(process.execPath, ['dist/worker.js'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', S3_LOCAL_PORT: String(s3Port), S3_BUCKET: '', S3_ENDPOINT: '', S3_REGION: '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  // A whole line: one with an error's stack may arrive in more than one piece.
  const logged = (): string | undefined => output.split('\n').slice(0, -1).find((l) => l.includes('S3 not reachable yet'))
  t.ok(await eventually(() => logged() !== undefined, 90_000), 'the wait is logged')
  const line = logged() ?? ''
  const entry = JSON.parse(line) as { level: number, bucket?: string }
  t.equal(entry.level, 40, 'as a warning: the store may simply be starting')
  t.ok(entry.bucket, 'with the bucket it waits for')
  t.notOk(output.split('\n').some((l) => l.includes('"level":50') && l.includes('S3')), 'and no error about S3 so far')
})

t.test('a Redis database number the server lacks is refused at start-up, not used as database 0', async (t) => {
  const port = await freePort()
  const result = spawnSync(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent', PORT: String(port), REDIS_URL: 'redis://127.0.0.1:6379/40' },
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(result.status, 1)
  t.match(result.stderr, /REDIS_URL names database 40, which this Redis server does not have/)
})

t.test('a build with nothing changed rewrites nothing', async (t) => {
  const build = (): number | null => spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'ignore', timeout: 120_000 }).status
  t.equal(build(), 0)
  const before = statSync(`${root}dist/app.js`).mtimeMs
  t.equal(build(), 0)
  t.equal(statSync(`${root}dist/app.js`).mtimeMs, before, 'dist/app.js untouched: only what changed is compiled')
})
