import { request as httpRequest } from 'node:http'
import t from 'tap'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'

// A /query answered from the near cache is sent before Fastify sees the request
// (src/tracking/hit-shortcut.ts). Only real HTTP goes through it (inject calls Fastify directly),
// so every request here is a real one. The routes are the reference the shortcut must match.
const { app, database, config } = await buildTestApp(t, 'hit_shortcut', {
  RATE_LIMIT_PER_MINUTE: '20',
  RATE_LIMIT_NOT_FOUND_PER_MINUTE: '2',
  TRUST_PROXY: '127.0.0.1'
})
await app.listen({ host: '127.0.0.1', port: 0 })
const order = await insertKnownOrder(database.db)

interface Answer { status: number, rawHeaders: string[], body: Buffer }

async function get (path: string, headers: Record<string, string> = {}, method = 'GET', server = app): Promise<Answer> {
  const { port } = server.server.address() as { port: number }
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The headers as sent, in order, without the two that differ on every answer. */
const stable = (answer: Answer): string[] => {
  const out: string[] = []
  for (let i = 0; i < answer.rawHeaders.length; i += 2) {
    const name = answer.rawHeaders[i].toLowerCase()
    if (name !== 'date' && name !== 'x-request-id') out.push(`${name}: ${answer.rawHeaders[i + 1]}`)
  }
  return out
}
const header = (answer: Answer, name: string): string | undefined => {
  const i = answer.rawHeaders.findIndex((h, n) => n % 2 === 0 && h.toLowerCase() === name)
  return i < 0 ? undefined : answer.rawHeaders[i + 1]
}

/** Each client (X-Forwarded-For, trusted from loopback) has its own budgets. */
let clients = 0
const nextClient = (): Record<string, string> => ({ 'x-forwarded-for': `203.0.113.${++clients}` })

/** Rate limits count per clock minute: start a counting test with at least 15 s of it left. */
async function freshMinute (): Promise<void> {
  const left = 60_000 - Date.now() % 60_000
  if (left < 15_000) await new Promise((resolve) => setTimeout(resolve, left + 50))
}

/**
 * Holds the order's answer in the process: a miss fills Redis, a Redis hit fills the near cache
 * (which empties itself whenever its invalidation channel misses a heartbeat, as on a busy machine).
 */
async function hold (server = app, sno = order.sno): Promise<boolean> {
  return await eventually(async () => {
    if (server.tracking.held(sno) !== undefined) return true
    await get(`/query?sno=${sno}`, nextClient(), 'GET', server)
    return false
  }, 20_000)
}
t.ok(await hold(), 'the answer is held in the near cache')

t.test('the server has the settings Fastify would give its own', async (t) => {
  // The keep-alive timeout is the connection's idle timeout, set once per connection (test/http/idle-timeout.test.ts).
  t.equal(app.server.keepAliveTimeout, 0)
  t.equal(app.server.timeout, config.server.keepAliveTimeoutMs)
  t.equal(app.server.requestTimeout, config.server.requestTimeoutMs)
  const oversized = await get(`/query?sno=${order.sno}`, { 'x-padding': 'a'.repeat(9 * 1024) })
  t.equal(oversized.status, 400, 'headers past 8 KiB refused')
  t.equal(JSON.parse(oversized.body.toString()).code, 'HEADERS_TOO_LARGE')
})

t.test('a held answer is sent by the shortcut exactly as the route sends it', async (t) => {
  t.ok(await hold())
  const before = app.hitShortcut.answered
  const fast = await get(`/query?sno=${order.sno}`, nextClient())
  t.equal(app.hitShortcut.answered, before + 1, 'answered by the shortcut')
  // A leading zero is the same order, but not the plain form: the route answers it.
  const routed = await get(`/query?sno=0${order.sno}`, nextClient())
  t.equal(app.hitShortcut.answered, before + 1, 'answered by the route')
  t.equal(fast.status, 200)
  t.equal(routed.status, 200)
  t.same(fast.body, routed.body, 'the same bytes')
  t.same(stable(fast), stable(routed), 'the same headers, in the same order')
  t.match(header(fast, 'x-request-id'), /^[0-9a-f]{8}-[0-9a-z]+$/, 'a request id is made')
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, new RegExp(`^logistics_query_shortcut_answers_total\\{[^}]*\\} ${app.hitShortcut.answered}$`, 'm'), '/metrics counts the shortcut\'s answers')
})

t.test('the request id from nginx is kept when well formed', async (t) => {
  t.ok(await hold())
  const before = app.hitShortcut.answered
  const kept = await get(`/query?sno=${order.sno}`, { ...nextClient(), 'x-request-id': 'nginx-7f3a.1' })
  t.equal(header(kept, 'x-request-id'), 'nginx-7f3a.1')
  const replaced = await get(`/query?sno=${order.sno}`, { ...nextClient(), 'x-request-id': 'not valid!' })
  t.not(header(replaced, 'x-request-id'), 'not valid!')
  t.equal(app.hitShortcut.answered, before + 2, 'both by the shortcut')
})

t.test('what the shortcut does not answer reaches the routes unchanged', async (t) => {
  const before = app.hitShortcut.answered
  const cases: Array<[string, string, string]> = [
    ['another parameter', 'GET', `/query?sno=${order.sno}&extra=1`],
    ['HEAD', 'HEAD', `/query?sno=${order.sno}`],
    ['POST', 'POST', `/query?sno=${order.sno}`],
    ['not a number', 'GET', '/query?sno=abc'],
    ['out of range', 'GET', '/query?sno=99999999999999999'],
    ['unknown', 'GET', `/query?sno=${order.sno + 1000}`],
    ['another path', 'GET', `/query/?sno=${order.sno}`]
  ]
  for (const [name, method, url] of cases) {
    const real = await get(url, nextClient(), method)
    const routed = await app.inject({ method: method as 'GET', url, headers: nextClient() })
    t.same([real.status, real.body.toString()], [routed.statusCode, routed.body], name)
  }
  t.equal(app.hitShortcut.answered, before, 'none of them by the shortcut')
})

t.test('the rate limit refuses the request after the limit, whichever path answers', async (t) => {
  await freshMinute()
  t.ok(await hold())
  const client = nextClient()
  const before = app.hitShortcut.answered
  for (let i = 1; i <= 20; i++) {
    const answer = await get(`/query?sno=${order.sno}`, client)
    if (answer.status !== 200) t.fail(`request ${i}: ${answer.status}`)
  }
  t.equal(app.hitShortcut.answered, before + 20, 'the 20 allowed were answered by the shortcut')
  const refused = await get(`/query?sno=${order.sno}`, client)
  t.equal(refused.status, 429)
  t.equal(JSON.parse(refused.body.toString()).code, 'RATE_LIMITED')
  t.ok(header(refused, 'retry-after'), 'with Retry-After')
  t.equal(header(refused, 'x-content-type-options'), 'nosniff', 'and the security headers')
})

t.test('a request handed on after the shortcut counted it is not counted twice', async (t) => {
  await freshMinute()
  t.ok(await hold())
  const client = nextClient()
  // Three unknown orders: the third is over the budget of 2 (3 requests counted).
  for (let i = 1; i <= 3; i++) await get(`/query?sno=${order.sno + 5000 + i}`, client)
  const before = app.hitShortcut.answered
  // Over the unknown-sno budget, a held answer is refused too: the shortcut counts the request
  // and hands it on; the routes answer 429 without counting it again. So requests 4 to 20 get
  // TOO_MANY_NOT_FOUND, and the 21st is the first over the limit of 20.
  const codes: string[] = []
  for (let i = 4; i <= 21; i++) codes.push(JSON.parse((await get(`/query?sno=${order.sno}`, client)).body.toString()).code)
  t.same(codes, [...Array(17).fill('TOO_MANY_NOT_FOUND'), 'RATE_LIMITED'])
  t.equal(app.hitShortcut.answered, before, 'none answered by the shortcut')
})

t.test('its answers are in the request histogram', async (t) => {
  const count = async (): Promise<number> => {
    const text = (await app.inject('/metrics')).body
    const line = text.split('\n').find((l) => l.startsWith('logistics_http_request_duration_seconds_count{') && l.includes('route="/query"') && l.includes('status="200"'))
    return Number(line?.split(' ').at(-1) ?? 0)
  }
  t.ok(await hold())
  const [before, answered] = [await count(), app.hitShortcut.answered]
  for (let i = 0; i < 5; i++) await get(`/query?sno=${order.sno}`, nextClient())
  t.equal(app.hitShortcut.answered, answered + 5, 'answered by the shortcut')
  t.equal(await count(), before + 5)
})

t.test('an overloaded process hands held answers on, and the route refuses them', async (t) => {
  const shedding = await buildTestApp(t, 'hit_shortcut_overload', { MAX_EVENT_LOOP_DELAY_MS: '50' })
  await shedding.app.listen({ host: '127.0.0.1', port: 0 })
  const known = await insertKnownOrder(shedding.database.db)
  t.ok(await hold(shedding.app, known.sno))
  const before = shedding.app.hitShortcut.answered
  // Block across a whole sampling interval (200 ms); the overdue sample runs right after.
  const until = Date.now() + 600
  while (Date.now() < until) { /* busy: a CPU-bound burst */ }
  await new Promise((resolve) => setTimeout(resolve, 0))
  const refused = await get(`/query?sno=${known.sno}`, nextClient(), 'GET', shedding.app)
  t.equal(refused.status, 503)
  t.equal(JSON.parse(refused.body.toString()).code, 'OVERLOADED')
  t.equal(shedding.app.hitShortcut.answered, before, 'not by the shortcut')
  t.ok(await eventually(async () => (await get(`/query?sno=${known.sno}`, nextClient(), 'GET', shedding.app)).status === 200, 10_000), 'served again once calm')
})
