import t from 'tap'
import fc from 'fast-check'
import { buildTestApp } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'

/**
 * Whatever body arrives at POST /orders and POST /events (any media type, malformed JSON, any
 * JSON value, events with any field values, any Idempotency-Key), the answer is one a client can
 * act on, never a 5xx, and every error is JSON in the app's shape with a code.
 */
const { app, database } = await buildTestApp(t, 'intake_bodies', { RATE_LIMIT_PER_MINUTE: '1000000', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '1000000' })
const { sno } = await insertKnownOrder(database.db, { events: [{ status: 'Created', locationId: 1, at: new Date(Date.now() - 3_600_000).toISOString() }] })

const ALLOWED = new Set([200, 201, 400, 409, 413, 415, 422])
const LEAKS = /\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+|node_modules|SELECT |INSERT |\bER_[A-Z_]+|sqlMessage|Error:/

function check (label: string, res: { statusCode: number, body: string }): void {
  if (!ALLOWED.has(res.statusCode)) throw new Error(`${label} → ${res.statusCode}: ${res.body.slice(0, 300)}`)
  if (LEAKS.test(res.body)) throw new Error(`${label} leaks: ${res.body.slice(0, 300)}`)
  const parsed = JSON.parse(res.body) as Record<string, unknown>
  if (res.statusCode >= 400) {
    if (parsed.statusCode !== res.statusCode || typeof parsed.error !== 'string' || typeof parsed.message !== 'string' || !/^[A-Z][A-Z_]+$/.test(String(parsed.code))) {
      throw new Error(`${label}: not the error shape: ${res.body.slice(0, 300)}`)
    }
  }
}

t.test('fixed cases: media types, empty and malformed bodies, nesting, prototype keys', async (t) => {
  const cases: Array<[string, string | undefined, string | undefined, number, string]> = [
    ['/orders', 'text/plain', '{"a":1}', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['/orders', 'application/x-www-form-urlencoded', 'a=1', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['/events', 'multipart/form-data; boundary=x', '--x--', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['/events', undefined, '{"events":[]}', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['/orders', undefined, undefined, 400, 'BODY_INVALID'],
    ['/events', undefined, undefined, 400, 'EVENTS_REQUIRED'],
    ['/orders', 'application/json', '', 400, 'INVALID_JSON'],
    ['/orders', 'application/json', '   ', 400, 'INVALID_JSON'],
    ['/events', 'application/json', '{"events":[', 400, 'INVALID_JSON'],
    ['/events', 'application/json', "{'events':[]}", 400, 'INVALID_JSON'],
    ['/events', 'application/json', '{"events":[]}garbage', 400, 'INVALID_JSON'],
    ['/orders', 'application/json; charset=utf-8', 'null', 400, 'BODY_INVALID'],
    ['/orders', 'application/json', '{"__proto__":{"admin":true}}', 400, 'INVALID_JSON'],
    ['/orders', 'application/json', '{"constructor":{"prototype":{"admin":true}}}', 400, 'INVALID_JSON'],
    ['/events', 'application/json', `{"events":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`, 400, 'INVALID_JSON'],
    ['/events', 'application/json', `{"events":[${'{"a":'.repeat(40)}1${'}'.repeat(40)}]}`, 400, 'INVALID_JSON'],
    ['/events', 'application/json', '{"events":[1,"x",null,true,[],{}]}', 200, ''],
    ['/events', 'application/json', '{"events":[{"event_id":"a\\"[{[{","sno":1,"status":"Created","location_id":1,"occurred_at":"x"}]}', 200, ''],
    ['/orders', 'garbage', '{}', 400, 'INVALID_CONTENT_TYPE']
  ]
  for (const [url, type, payload, status, code] of cases) {
    const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type }
    const res = await app.inject({ method: 'POST', url, headers, payload, ...(payload === undefined ? {} : {}) })
    const label = `${url} ${type ?? '(no type)'} ${JSON.stringify(payload?.slice(0, 40))}`
    t.equal(res.statusCode, status, `${label} → ${status}`)
    if (code !== '') t.equal(res.json().code, code, `${label} → ${code}`)
    check(label, res)
  }
  const withKey = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json', 'idempotency-key': 'deep' }, payload: `{"events":[${'['.repeat(30)}${']'.repeat(30)}]}` })
  t.equal(withKey.statusCode, 200, 'a keyed body at the depth limit hashes fine')
})

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 10 }), fc.constantFrom('', ' ', '李大同', '\u0000', '\ud800', 'x'.repeat(300)))
const junk = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 2 }))
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ arbitrary: arb, weight: 6 }, { arbitrary: junk, weight: 1 })
const hubId = fc.constantFrom(1, 3, 4, 7, 999, 0, -1, 2 ** 53)
const time = fc.oneof(
  fc.date({ min: new Date('1990-01-01'), max: new Date(Date.now() + 86_400_000), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2026-11-29T08:15:00+08:00', '2026-11-29T08:15:00', '2026-02-30T00:00:00Z', 'now', '')
)
const eventItem = fc.record({
  event_id: maybe(fc.stringMatching(/^[!-~]{1,70}$/)),
  sno: maybe(fc.constantFrom(sno, String(sno), 987654, 0)),
  status: maybe(fc.constantFrom('Created', 'In Transit', 'Delivered', 'Exception', 'delivered', 'Lost')),
  location_id: maybe(hubId),
  occurred_at: maybe(time),
  vehicle_id: maybe(fc.constantFrom('TPE-01', 'bad id', ''))
}, { requiredKeys: [] })
const eventsBody = fc.oneof(
  fc.record({ events: fc.array(fc.oneof(eventItem, junk), { maxLength: 12 }) }),
  fc.record({ events: junk }),
  junk
)
const goodOrder = fc.record({
  recipient: fc.record({ name: fc.constantFrom('李大同', '王小明'), address: fc.constant('澎湖縣馬公市中正路200號'), phone: fc.constant('0912345678') }),
  sender_location_id: fc.constantFrom(1, 3),
  receiver_location_id: fc.constantFrom(4, 7),
  reference: fc.option(fc.stringMatching(/^[a-z0-9-]{1,20}$/), { nil: undefined })
})
const orderBody = fc.oneof(
  goodOrder,
  fc.record({
    recipient: maybe(fc.record({
      name: maybe(fc.oneof({ arbitrary: fc.constantFrom('李大同', '王小明'), weight: 3 }, { arbitrary: text, weight: 1 })),
      address: maybe(fc.oneof({ arbitrary: fc.constant('澎湖縣馬公市中正路200號'), weight: 3 }, { arbitrary: text, weight: 1 })),
      phone: maybe(fc.constantFrom('0912345678', '0912345678', '12', '+886 2 1234', 'abc'))
    }, { requiredKeys: [] })),
    sender_location_id: maybe(hubId),
    receiver_location_id: maybe(hubId),
    estimated_delivery: maybe(fc.constantFrom('2026-12-01', '2099-01-01', '2026-02-30', new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10))),
    reference: maybe(text),
    extra: fc.option(fc.constant(1), { freq: 5, nil: undefined })
  }, { requiredKeys: ['recipient', 'sender_location_id', 'receiver_location_id', 'extra'] }),
  junk
)
const contentType = fc.oneof(
  { arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON'), weight: 6 },
  { arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'garbage'), weight: 1 }
)
const key = fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), fc.stringMatching(/^[ -~]{0,300}$/)), { nil: undefined })
const raw = fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('{', '[', '{"events":', 'null', '1e999', '"\\ud800"'))

t.test('generated bodies never get a 5xx', async (t) => {
  const seen = new Map<number, number>()
  await fc.assert(fc.asyncProperty(
    fc.constantFrom('/orders', '/events'), fc.constantFrom('own', 'own', 'own', 'other', 'raw'), orderBody, eventsBody, raw, contentType, key,
    async (url, kind, order, events, text, type, idem) => {
      const ordersBody = (kind === 'own') === (url === '/orders')
      const payload = kind === 'raw' ? text : JSON.stringify(ordersBody ? order : events)
      const headers: Record<string, string> = { 'content-type': type }
      if (idem !== undefined) headers['idempotency-key'] = idem.replace(/^ +| +$/g, '')
      const res = await app.inject({ method: 'POST', url, headers, payload })
      seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1)
      check(`${url} ${type} ${payload.slice(0, 80)}`, res)
    }), { numRuns: 1500, seed: 20261129 })
  t.comment(`statuses seen: ${[...seen.entries()].sort().map(([s, n]) => `${s}×${n}`).join(', ')}`)
  for (const status of [200, 201, 400, 415]) t.ok((seen.get(status) ?? 0) > 0, `reached ${status}`)
})
