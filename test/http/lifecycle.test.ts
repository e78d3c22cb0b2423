import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/app.js'

/** `node dist/server.js` stopped with SIGTERM and SIGINT while requests are in flight. */
const root = new URL('../..', import.meta.url).pathname
if (!existsSync(`${root}dist/server.js`)) throw new Error('dist/ is missing: npm test builds it first (npm run build)')
const config = testConfig('http_lifecycle')
await clearKeys(t, config)
const { db } = await freshDatabase(t, config)
const countOrders = async (): Promise<number> => Number((await db.selectFrom('orders').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: in-flight requests finish, then the process exits cleanly`, async (t) => {
    const port = await freePort()
    const child = spawn(process.execPath, ['dist/server.js'], {
      cwd: root,
      env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', PORT: String(port), DATABASE_URL: config.db.url, REDIS_URL: config.redis.url, REDIS_KEY_PREFIX: config.redis.keyPrefix, SHUTDOWN_TIMEOUT_MS: '8000' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const exited = new Promise<{ code: number | null, at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: performance.now() })))
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

    const base = `http://127.0.0.1:${port}`
    t.ok(await eventually(async () => (await fetch(`${base}/`).catch(() => null))?.status === 200, 90_000), 'listening (a start takes over 20 s next to a busy machine)')

    // Twenty /fake?num=100 requests (each writes 100 orders in one transaction), then the signal.
    const before = await countOrders()
    let signalledAt = Infinity
    const inFlight = Array.from({ length: 20 }, async () => {
      try {
        const res = await fetch(`${base}/fake?num=100`)
        const body = await res.json() as { data?: unknown[] }
        return { status: res.status, orders: body.data?.length ?? 0, after: performance.now() > signalledAt }
      } catch {
        return { status: 0, orders: 0, after: true } // never reached the server, or was refused
      }
    })
    await new Promise((resolve) => setTimeout(resolve, 60))
    signalledAt = performance.now()
    child.kill(signal)
    const results = await Promise.all(inFlight)
    const { code, at } = await exited

    const answered = results.filter((r) => r.status === 200)
    t.ok(answered.some((r) => r.after), `requests running at the signal were answered after it (${answered.filter((r) => r.after).length})`)
    t.ok(results.every((r) => [0, 200, 503].includes(r.status)), 'the rest were refused (503 or no connection), never cut half way')
    t.equal(await countOrders() - before, answered.reduce((n, r) => n + r.orders, 0), 'every order written was answered: nothing committed and lost')
    t.equal(code, 0, 'exit code 0: MySQL, Redis and S3 clients closed, nothing left hanging')
    t.match(output, /shutting down: draining requests/)
    t.comment(`${signal}: exited ${(at - signalledAt).toFixed(0)} ms after the signal`)
    const after = await fetch(`${base}/`).then(() => 'answered', () => 'refused')
    t.equal(after, 'refused', 'no new connections once stopped')
  })
}
