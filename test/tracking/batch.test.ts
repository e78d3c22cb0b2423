import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'

const { app, database } = await buildTestApp(t, 'tracking_batch', { RATE_LIMIT_PER_MINUTE: '150', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '10' })
const a = await insertKnownOrder(database.db)
const b = await insertKnownOrder(database.db, { recipient: { name: '陳美麗', address: '台北市信義區松仁路100號', phone: '0912345678' } })
const post = async (body: unknown, ip = '198.51.100.1') => await app.inject({ method: 'POST', url: '/query', payload: body as Record<string, unknown>, headers: { 'x-forwarded-for': ip } })

t.test('each answer as GET /query gives it, unknown ones listed', async (t) => {
  const res = await post({ snos: [b.sno, a.sno, 424242, String(a.sno)] })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(body.not_found, [424242])
  t.same(body.data.map((d: { sno: string }) => d.sno), [String(b.sno), String(a.sno)], 'in the order asked, each once')
  t.same(body.data[1], (await app.inject(`/query?sno=${a.sno}`)).json(), 'the same body as GET /query')
  t.equal(body.data[0].recipient.name, '陳美麗')
})

t.test('clear 400s', async (t) => {
  for (const [payload, code] of [[{}, 'SNOS_REQUIRED'], [{ snos: [] }, 'SNOS_REQUIRED'], [{ snos: Array.from({ length: 101 }, (_, i) => i + 1) }, 'TOO_MANY_SNOS'], [{ snos: [1, -2] }, 'SNO_INVALID'], [{ snos: ['x'] }, 'SNO_INVALID'], [{ snos: [1.5] }, 'SNO_INVALID']] as const) {
    const res = await post(payload, '198.51.100.2')
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.equal(res.json().code, code)
  }
  const text = await app.inject({ method: 'POST', url: '/query', payload: 'snos=1', headers: { 'content-type': 'text/plain' } })
  t.equal(text.statusCode, 415)
})

t.test('a batch is not a way around the rate limits', async (t) => {
  await bulkLoadOrders(database.db, { count: 200, seed: 3 })
  const real = (await database.db.selectFrom('orders').select('sno').orderBy('sno').execute()).map((o) => Number(o.sno))
  t.equal((await post({ snos: real.slice(0, 100) }, '198.51.100.3')).statusCode, 200, '100 lookups')
  const over = await post({ snos: real.slice(100, 200) }, '198.51.100.3')
  t.equal(over.statusCode, 429, 'the next 100 go past 150 a minute: each lookup counted')
  t.equal(over.json().code, 'RATE_LIMITED')

  const res = await post({ snos: Array.from({ length: 100 }, (_, i) => 900_000 + i) }, '198.51.100.4')
  t.equal(res.statusCode, 429, '100 unknown snos against a budget of 10: refused whole')
  t.equal(res.json().code, 'TOO_MANY_NOT_FOUND')
  t.notOk(res.body.includes('not_found'), 'nothing said about which exist')
  t.equal((await app.inject({ url: `/query?sno=${a.sno}`, headers: { 'x-forwarded-for': '198.51.100.4' } })).statusCode, 429, 'and the client is over its budget for GET too')
})
