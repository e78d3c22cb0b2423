import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys, freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/app.js'

/**
 * `node dist/server.js` with the default 1 s event-loop limit, paused (SIGSTOP/SIGCONT) while
 * requests flow: short pauses refuse nothing; a pause past the limit refuses, then recovers.
 */
const root = new URL('../..', import.meta.url).pathname
if (!existsSync(`${root}dist/server.js`)) throw new Error('dist/ is missing: npm test builds it first (npm run build)')
const config = testConfig('http_overload_pauses')
await clearKeys(t, config)
await freshDatabase(t, config)

const port = await freePort()
const child = spawn(process.execPath, ['dist/server.js'], {
  cwd: root,
  env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'warn', PORT: String(port), DATABASE_URL: config.db.url, REDIS_URL: config.redis.url, REDIS_KEY_PREFIX: config.redis.keyPrefix, MAX_EVENT_LOOP_DELAY_MS: '1000', MAX_HEAP_USED_MB: '0', RATE_LIMIT_PER_MINUTE: '0' },
  stdio: ['ignore', 'pipe', 'pipe']
})
let output = ''
child.stdout.on('data', (d: Buffer) => { output += d.toString() })
child.stderr.on('data', (d: Buffer) => { output += d.toString() })
t.teardown(() => { child.kill('SIGCONT'); child.kill('SIGKILL') })

const agent = new Agent({ keepAlive: true, maxSockets: 4 })
t.teardown(() => agent.destroy())
const get = async (): Promise<number> => await new Promise((resolve) => {
  const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
  req.on('error', () => resolve(0))
  req.end()
})
t.ok(await eventually(async () => await get() === 200, 90_000), 'listening')

/** Four clients sending requests back to back until `stop` is set; statuses counted. */
function flow (): { statuses: Map<number, number>, stop: () => Promise<void> } {
  const statuses = new Map<number, number>()
  const state = { running: true }
  const loops = Array.from({ length: 4 }, async () => {
    while (state.running) {
      const status = await get()
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
  })
  return { statuses, stop: async () => { state.running = false; await Promise.all(loops) } }
}

const pause = async (ms: number): Promise<void> => {
  child.kill('SIGSTOP')
  await new Promise((resolve) => setTimeout(resolve, ms))
  child.kill('SIGCONT')
}

t.test('twenty 300 ms pauses under a 1 s limit: no 503', async (t) => {
  const traffic = flow()
  for (let i = 0; i < 20; i++) {
    await pause(300)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await traffic.stop()
  const statuses = Object.fromEntries(traffic.statuses)
  t.comment(`statuses: ${JSON.stringify(statuses)}`)
  t.equal(traffic.statuses.get(503) ?? 0, 0, 'no request refused')
  t.ok((traffic.statuses.get(200) ?? 0) > 20, 'requests flowed')
})

t.test('a 2 s pause: requests are refused, then served again', async (t) => {
  const traffic = flow()
  await new Promise((resolve) => setTimeout(resolve, 200))
  await pause(2000)
  t.ok(await eventually(async () => (traffic.statuses.get(503) ?? 0) > 0 && await get() === 200, 30_000), 'refused after the stall, then recovered')
  await traffic.stop()
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(traffic.statuses))}`)
  t.ok(await eventually(() => /overloaded: requests refused/.test(output), 30_000), 'refusals summed up in the log')
  const perRefusal = output.split('\n').filter((line) => line.includes('OVERLOADED') && line.includes('"stack"'))
  t.equal(perRefusal.length, 0, 'no stack trace per refusal')
})
