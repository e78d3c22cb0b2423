import t from 'tap'
import { sql } from 'kysely'
import { buildTestApp } from '../helpers/app.js'
import { FAKE_EXAMPLE, ERROR_EXAMPLE, shapeDifferences } from '../helpers/contract.js'
import type { Db } from '../../src/infra/db.js'

const { app, database } = await buildTestApp(t, 'orders_fake', { FAKE_SEED: '99' })
const db = database.db

async function counts (db: Db): Promise<{ recipients: number, orders: number, events: number }> {
  const { rows } = await sql<{ recipients: number, orders: number, events: number }>`
    SELECT (SELECT COUNT(*) FROM recipients) AS recipients, (SELECT COUNT(*) FROM orders) AS orders,
           (SELECT COUNT(*) FROM tracking_events) AS events`.execute(db)
  return rows[0]
}

t.test('default 10 orders in the documented shape, each readable through /query', async (t) => {
  const res = await app.inject('/fake')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(shapeDifferences(body, FAKE_EXAMPLE), [], 'same keys and JSON types as the contract')
  t.equal(body.data.length, 10)
  for (const order of body.data) {
    t.equal(typeof order.sno, 'number', 'sno is a number here')
    t.same(order.tracking_status, order.details[order.details.length - 1], 'tracking_status is the last detail')
    t.ok(order.details.every((d: { order_sno: number }) => d.order_sno === order.sno))
    const query = (await app.inject(`/query?sno=${order.sno}`)).json()
    t.same(query.details.map((d: { status: string, location_id: number }) => [d.status, d.location_id]),
      order.details.map((d: { tracking_status: string, location_id: number }) => [d.tracking_status, d.location_id]),
      `order ${order.sno}: /query shows the same timeline`)
    t.equal(query.tracking_status, order.tracking_status.tracking_status)
    t.match(query.recipient.name, /^\p{Script=Han}{2,4}$/u, 'a zh_TW name stored and read back')
    const row = await db.selectFrom('orders').select(['status', 'location_id']).where('sno', '=', order.sno).executeTakeFirstOrThrow()
    t.same([row.status, row.location_id], [order.tracking_status.tracking_status, order.tracking_status.location_id], 'the order row carries its current status and hub')
  }
})

t.test('num: capped at 100; below 1 or not an integer is a 400', async (t) => {
  t.equal((await app.inject('/fake?num=3')).json().data.length, 3)
  t.equal((await app.inject('/fake?num=100')).json().data.length, 100)
  const capped = await app.inject('/fake?num=5000')
  t.equal(capped.statusCode, 200)
  t.equal(capped.json().data.length, 100, 'above 100 makes 100 (documented)')
  t.equal((await app.inject('/fake?num=99999999999999999999999')).json().data.length, 100)
  for (const bad of ['0', '-1', 'abc', '1.5', '1e2', '10abc', ' ']) {
    const res = await app.inject(`/fake?num=${encodeURIComponent(bad)}`)
    t.equal(res.statusCode, 400, `num=${bad} → 400`)
    t.same(shapeDifferences(res.json(), ERROR_EXAMPLE), [])
    t.equal(res.json().code, 'NUM_INVALID')
  }
  const twice = await app.inject('/fake?num=1&num=2')
  t.equal(twice.statusCode, 400)
  t.equal(twice.json().code, 'NUM_INVALID')
})

t.test('all or nothing: a failure while writing events leaves no order behind', async (t) => {
  const before = await counts(db)
  // A real failure inside the transaction, after recipients and orders are written.
  await sql`CREATE TRIGGER refuse_events BEFORE INSERT ON tracking_events FOR EACH ROW
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'events refused for the test'`.execute(db)
  t.teardown(async () => { await sql`DROP TRIGGER IF EXISTS refuse_events`.execute(db) })
  const res = await app.inject('/fake?num=50')
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'INTERNAL_ERROR')
  t.notMatch(res.body, /refused for the test|tracking_events|SQL/i, 'no internal detail in the answer')
  t.same(await counts(db), before, 'no recipient, order or event was left')
  await sql`DROP TRIGGER refuse_events`.execute(db)
  t.equal((await app.inject('/fake?num=2')).statusCode, 200, 'works again afterwards')
})

t.test('FAKE_SEED makes the generated orders reproducible', async (t) => {
  const { app: other } = await buildTestApp(t, 'orders_fake_seed', { FAKE_SEED: '99' })
  const { app: third } = await buildTestApp(t, 'orders_fake_seed2', { FAKE_SEED: '99' })
  const a = (await other.inject('/fake?num=5')).json().data
  const b = (await third.inject('/fake?num=5')).json().data
  t.same(a, b, 'same seed, fresh databases: same orders, same statuses, same hubs')
  const recipients = async (app: typeof other, snos: number[]): Promise<string[]> =>
    await Promise.all(snos.map(async (sno) => (await app.inject(`/query?sno=${sno}`)).json().recipient.name))
  t.same(await recipients(other, a.map((o: { sno: number }) => o.sno)), await recipients(third, b.map((o: { sno: number }) => o.sno)), 'same recipients')
})

t.test('in production /fake needs the admin token', async (t) => {
  const token = 'prod-token-0123456789abcdef'
  const { app: prod } = await buildTestApp(t, 'orders_fake_prod', { NODE_ENV: 'production', ADMIN_TOKEN: token, S3_LOCAL_SECRET_ACCESS_KEY: 'prod-s3-secret-0123456789', LOG_LEVEL: 'silent' })
  const none = await prod.inject('/fake?num=1')
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'UNAUTHORIZED')
  t.equal(none.headers['www-authenticate'], 'Bearer')
  const wrong = await prod.inject({ url: '/fake?num=1', headers: { authorization: 'Bearer nope' } })
  t.equal(wrong.statusCode, 401, 'a token that is not known is no token (contract: 401 without a valid token)')
  t.equal(wrong.json().code, 'TOKEN_INVALID')
  const right = await prod.inject({ url: '/fake?num=1', headers: { authorization: `Bearer ${token}` } })
  t.equal(right.statusCode, 200)
  t.equal(right.json().data.length, 1)
})

t.test('ids are right whatever the AUTO_INCREMENT settings', async (t) => {
  const { insertOrders } = await import('../../src/writes/sql.js')
  const { OrderGenerator } = await import('../../src/orders/generator.js')
  const hubs = await db.selectFrom('locations').selectAll().execute()
  const generator = new OrderGenerator(5)
  const check = async (snos: number[], names: string[]): Promise<boolean> => {
    const rows = await db.selectFrom('orders').innerJoin('recipients', 'recipients.id', 'orders.recipient_id')
      .select(['orders.sno', 'recipients.name']).where('orders.sno', 'in', snos).execute()
    return rows.length === snos.length && snos.every((sno, i) => rows.find((r) => r.sno === sno)?.name === names[i])
  }
  for (const [label, step, session] of [['one row at a time (innodb_autoinc_lock_mode 2)', 0, 1], ['auto_increment_increment 3 (Galera)', 3, 3]] as const) {
    const drafts = Array.from({ length: 5 }, () => generator.draft(hubs, new Date()))
    const snos = await db.connection().execute(async (conn) => {
      await sql`SET SESSION auto_increment_increment = ${sql.raw(String(session))}`.execute(conn)
      try {
        return await conn.transaction().execute(async (trx) => await insertOrders(trx, drafts, { idStep: step }))
      } finally {
        await sql`SET SESSION auto_increment_increment = 1`.execute(conn)
      }
    })
    t.ok(await check(snos, drafts.map((d) => d.recipient.name)), `${label}: every order has its own recipient (${snos.join(', ')})`)
  }
})
