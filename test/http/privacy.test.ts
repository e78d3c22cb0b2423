import t from 'tap'
import { Writable } from 'node:stream'
import { sql } from 'kysely'
import { buildApp } from '../../src/app.js'
import { buildTestApp } from '../helpers/app.js'
import { testConfig } from '../helpers/config.js'
import { insertKnownOrder } from '../helpers/orders.js'

class Capture extends Writable {
  text = ''
  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString()
    callback()
  }
}

const token = 'privacy-admin-token-0123456789ab'
const { database } = await buildTestApp(t, 'http_privacy', { ADMIN_TOKEN: token })
const db = database.db

t.test('recipient names, phones and addresses never reach the logs', async (t) => {
  const logs = new Capture()
  const app = await buildApp(testConfig('http_privacy', { LOG_LEVEL: 'trace', ADMIN_TOKEN: token, FAKE_SEED: '7' }), { logStream: logs })
  t.teardown(async () => await app.close())
  const auth = { authorization: `Bearer ${token}` }

  // A full cycle: create, miss, hit, errors of every kind, a database failure.
  const made = (await app.inject({ url: '/fake?num=20', headers: auth })).json() as { data: Array<{ sno: number }> }
  for (const { sno } of made.data) {
    await app.inject(`/query?sno=${sno}`)
    await app.inject(`/query?sno=${sno}`)
  }
  await app.inject('/query?sno=abc')
  await app.inject('/query?sno=123456789')
  await app.inject({ url: '/fake?num=1', headers: { authorization: 'Bearer wrong' } })
  // A write failure whose driver message quotes the data: a duplicate recipient phone.
  const known = await insertKnownOrder(db)
  const { name } = await db.selectFrom('recipients').select('name').where('id', '=', known.recipientId).executeTakeFirstOrThrow()
  await sql`ALTER TABLE recipients ADD UNIQUE INDEX uq_test_phone (phone)`.execute(db)
  t.teardown(async () => { await sql`ALTER TABLE recipients DROP INDEX uq_test_phone`.execute(db).catch(() => {}) })
  const replay = await buildApp(testConfig('http_privacy', { LOG_LEVEL: 'trace', ADMIN_TOKEN: token, FAKE_SEED: '7' }), { logStream: logs })
  t.teardown(async () => await replay.close())
  const failed = await replay.inject({ url: '/fake?num=20', headers: auth })
  t.equal(failed.statusCode, 500, 'the same seed again: duplicate phones, the insert fails')

  const recipients = await db.selectFrom('recipients').select(['name', 'phone', 'address']).execute()
  t.ok(recipients.length >= 21)
  t.ok(logs.text.length > 1000, `logs were written (${logs.text.length} bytes)`)
  t.match(logs.text, /request failed/, 'the failure was logged')
  const leaked = [...recipients, { name, phone: '096678901', address: '澎湖縣馬公市中正路200號' }]
    .flatMap((r) => [r.name, r.phone, r.address])
    .filter((value) => logs.text.includes(value))
  t.same(leaked, [], 'no recipient data in any log line')
  t.notMatch(logs.text, new RegExp(token), 'no admin token either')
})

t.test('PII_MASK masks the recipient in /query answers', async (t) => {
  const order = await insertKnownOrder(db, { recipient: { name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '0966789012' } })
  const app = await buildApp(testConfig('http_privacy', { PII_MASK: 'true' }))
  t.teardown(async () => await app.close())
  const body = (await app.inject(`/query?sno=${order.sno}`)).json()
  t.same(body.recipient, { id: order.recipientId, name: '李**', address: '澎湖縣馬公市', phone: '*******012' })
  const again = (await app.inject(`/query?sno=${order.sno}`)).json()
  t.same(again.recipient, body.recipient, 'masked from the cache too')

  const full = await buildApp(testConfig('http_privacy'))
  t.teardown(async () => await full.close())
  t.equal((await full.inject(`/query?sno=${order.sno}`)).json().recipient.name, '李大同', 'an unmasked deployment on the same Redis sees full answers')
})
