import t from 'tap'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { Webhook } from 'standardwebhooks'
import { createLogger } from '../../src/logger.js'
import { DEFAULT_DISPATCHER, WebhookDispatcher, retryDelayMs } from '../../src/webhooks/dispatcher.js'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { freePort } from '../helpers/redis.js'

const token = 'webhook-test-admin-token-0123456789'
const { app, config, database } = await buildTestApp(t, 'webhooks', { ADMIN_TOKEN: token })
const admin = { authorization: `Bearer ${token}` }

/** A receiver that checks every signature as the Standard Webhooks spec says, and can be made to fail. */
interface Received { id: string, timestamp: string, body: { type: string, data: { sno: number, seq: number, change_id: number, occurred_at: string, event_id: string } } }
const received: Received[] = []
let answer = 200
let badSignatures = 0
let secret = ''
const port = await freePort()
const receiver = createServer((req, res) => {
  let text = ''
  req.on('data', (c: Buffer) => { text += c.toString() })
  req.on('end', () => {
    const headers = req.headers as IncomingHttpHeaders & Record<string, string>
    try {
      new Webhook(secret).verify(text, headers) // throws on a bad signature or an old timestamp
      // The same check by hand: HMAC-SHA256 of id.timestamp.body with the secret's bytes.
      const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
      const expected = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${text}`).digest('base64')
      if (!headers['webhook-signature'].split(' ').includes(`v1,${expected}`)) throw new Error('signature')
    } catch {
      badSignatures += 1
    }
    if (answer === 200) received.push({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], body: JSON.parse(text) })
    res.writeHead(answer).end()
  })
})
await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve))
t.teardown(() => receiver.close())

const logger = createLogger('silent')
const dispatcher = new WebhookDispatcher(database, config.db, logger, { ...DEFAULT_DISPATCHER, retryBaseMs: 50, intervalMs: 20, giveUpAfterMs: 60_000 })
dispatcher.start()
t.teardown(async () => await dispatcher.stop())

let n = 0
const scan = async (sno: number, count: number): Promise<void> => {
  for (let i = 0; i < count; i++) {
    const [r] = await app.writer.applyEvents([{ event_id: `wh-${++n}`, sno, status: 'In Transit', location_id: 6, occurred_at: new Date(Date.now() - 3_600_000 + n * 1000) }])
    if (r.result !== 'accepted') throw new Error(JSON.stringify(r))
  }
}

let hookId = 0
t.test('registration is for admins and returns the signing secret once', async (t) => {
  t.equal((await app.inject({ method: 'POST', url: '/webhooks', payload: { url: `http://127.0.0.1:${port}/hook` } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/webhooks', headers: admin, payload: { url: 'ftp://x' } })).json().code, 'URL_INVALID')
  t.equal((await app.inject({ method: 'POST', url: '/webhooks', headers: admin, payload: { url: 'http://x', events: ['nope'] } })).json().code, 'EVENTS_INVALID')
  const res = await app.inject({ method: 'POST', url: '/webhooks', headers: admin, payload: { url: `http://127.0.0.1:${port}/hook` } })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.match(body, { url: `http://127.0.0.1:${port}/hook`, events: ['tracking.updated'], status: 'active' })
  t.match(body.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/)
  secret = body.secret
  hookId = body.id
  const listed = (await app.inject({ url: '/webhooks', headers: admin })).json()
  t.notOk(JSON.stringify(listed).includes(secret), 'the secret is never shown again')
})

t.test('a receiver that fails for a while, then answers, gets every change once, in order per parcel, signed', async (t) => {
  const parcels = [await insertKnownOrder(database.db), await insertKnownOrder(database.db), await insertKnownOrder(database.db)]
  answer = 500
  for (const p of parcels) await scan(p.sno, 5)
  t.ok(await eventually(async () => {
    const view = (await app.inject({ url: `/webhooks/${hookId}`, headers: admin })).json()
    return view.deliveries.some((d: { attempts: number }) => d.attempts >= 3)
  }, 20_000), 'retried while the receiver fails')
  const failing = (await app.inject({ url: `/webhooks/${hookId}?status=pending`, headers: admin })).json()
  t.ok(failing.failing_since, 'the endpoint shows since when it fails')
  const tried = failing.deliveries.find((d: { attempts: number }) => d.attempts > 0)
  t.match(tried.last_attempts[0], { status_code: 500 }, 'the admin sees the attempts')
  t.match(tried, { status: 'pending', last_status_code: 500, last_error: 'HTTP 500' })
  answer = 200
  t.ok(await eventually(() => received.length >= 15, 30_000), 'all 15 delivered once the receiver is back')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(received.length, 15, 'no change twice')
  t.equal(new Set(received.map((r) => r.id)).size, 15, 'each webhook-id once')
  t.equal(badSignatures, 0, 'every signature valid')
  for (const p of parcels) {
    const seqs = received.filter((r) => r.body.data.sno === p.sno).map((r) => r.body.data.seq)
    t.same(seqs, [1, 2, 3, 4, 5], `parcel ${p.sno}: in its change order`)
  }
  t.match(received[0].body, { type: 'tracking.updated', data: { kind: 'tracking.event', status: 'In Transit' } })
  t.ok(received.every((r) => typeof r.body.data.occurred_at === 'string'), 'each carries occurred_at')
  const view = (await app.inject({ url: `/webhooks/${hookId}`, headers: admin })).json()
  t.equal(view.failing_since, null, 'back to healthy')
})

t.test('replay sends again what was asked', async (t) => {
  const before = received.length
  const ids = received.map((r) => r.body.data.change_id).sort((a, b) => a - b)
  const since = ids[9]
  const expected = received.filter((r) => r.body.data.change_id > since).map((r) => r.id).sort()
  const res = await app.inject({ method: 'POST', url: `/webhooks/${hookId}/replay?since=${since}`, headers: admin })
  t.equal(res.statusCode, 202)
  t.ok(await eventually(() => received.length >= before + 5, 20_000), 'the five changes after it again')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(received.slice(before).map((r) => r.id).sort(), expected, 'exactly those, with the same webhook-ids (receivers dedupe on them)')
})

t.test('an endpoint answering 410 is disabled', async (t) => {
  answer = 410
  const p = await insertKnownOrder(database.db)
  await scan(p.sno, 1)
  t.ok(await eventually(async () => (await app.inject({ url: `/webhooks/${hookId}`, headers: admin })).json().status === 'disabled', 20_000))
  t.match((await app.inject({ url: `/webhooks/${hookId}`, headers: admin })).json().disabled_reason, /410/)
  answer = 200
})

t.test('retry delays grow to hours, with jitter', async (t) => {
  const base = 5000
  t.same([1, 2, 3, 4, 9, 20].map((a) => retryDelayMs(a, base, () => 0.5)), [5000, 30_000, 120_000, 300_000, 28_800_000, 28_800_000])
  const total = Array.from({ length: 12 }, (_, i) => retryDelayMs(i + 1, base, () => 0)).reduce((a, b) => a + b, 0)
  t.ok(total > 24 * 3_600_000, `twelve retries span more than a day even at the low end of the jitter (${(total / 3_600_000).toFixed(1)} h)`)
})
