import t from 'tap'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { nginxTest, startNginx, writeNginxConfig } from '../helpers/nginx.js'
import { freePort } from '../helpers/redis.js'

/** The write API behind the shipped nginx site: large event batches pass, other paths stay at 16 KiB. */
const TOKEN = 'nginx-ingest-token-0123456789'
const { app, database } = await buildTestApp(t, 'intake_nginx', { INGEST_TOKENS: TOKEN })
const apiPort = await freePort()
await app.listen({ port: apiPort, host: '127.0.0.1' })
const nginxPort = await freePort()
const { dir, conf } = await writeNginxConfig(t, nginxPort, apiPort)
await startNginx(t, conf, dir)
const base = `http://127.0.0.1:${nginxPort}`
if (!await eventually(async () => (await fetch(`${base}/`).catch(() => null))?.status === 200, 10_000)) throw new Error('nginx did not come up')

const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
const { sno } = await insertKnownOrder(database.db, { events: [{ status: 'Created', locationId: 1, at: new Date(Date.now() - 3_600_000).toISOString() }] })

t.test('nginx -t accepts the site with its write locations', async (t) => {
  const result = await nginxTest(conf, dir)
  t.ok(result.ok, result.output)
})

t.test('POST /orders and a 500-event POST /events go through nginx', async (t) => {
  const created = await fetch(`${base}/orders`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ recipient: { name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '096678901' }, sender_location_id: 1, receiver_location_id: 3 })
  })
  t.equal(created.status, 201)
  t.match(created.headers.get('location'), /^\/query\?sno=\d+$/)

  const events = Array.from({ length: 500 }, (_, i) => ({
    event_id: `nginx-${i}-${'p'.repeat(50)}`,
    sno,
    status: 'In Transit',
    location_id: 7,
    occurred_at: new Date(Date.now() - (600 - i) * 1000).toISOString().replace('Z', '+00:00'),
    vehicle_id: 'TPE-01'
  }))
  const body = JSON.stringify({ events }, null, 2)
  t.ok(body.length > 100 * 1024, `${body.length} bytes`)
  const res = await fetch(`${base}/events`, { method: 'POST', headers, body })
  t.equal(res.status, 200)
  const { results } = await res.json() as { results: Array<{ result: string }> }
  t.equal(results.length, 500)
  t.ok(results.every((r) => r.result === 'accepted'))
  const query = await (await fetch(`${base}/query?sno=${sno}`)).json() as { tracking_status: string }
  t.equal(query.tracking_status, 'In Transit', '/query through nginx sees it')
})

t.test('limits: beyond 512 KiB on the write API, beyond 16 KiB elsewhere', async (t) => {
  const big = await fetch(`${base}/events`, { method: 'POST', headers, body: `{"events":[${'1,'.repeat(300_000)}1]}` })
  t.equal(big.status, 413)
  const elsewhere = await fetch(`${base}/query?sno=1`, { method: 'POST', headers, body: 'x'.repeat(20 * 1024) })
  t.equal(elsewhere.status, 413, 'the rest of the API still takes no bodies')
  const near = await fetch(`${base}/events`, { method: 'POST', headers, body: `{"events":[${'1,'.repeat(100_000)}1]}` })
  t.equal(near.status, 400, 'a 200 KB body reaches the API, which answers for itself')
  t.equal((await near.json() as { code: string }).code, 'TOO_MANY_EVENTS')
})
