import t from 'tap'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'

const config = testConfig('http_drain')
await freshDatabase(t, config)
await clearKeys(t, config)

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

// nginx keeps connections to the API open and sends the next request on one as soon as its last
// answer is in. During a PM2 reload the old process is draining; such a request must still be
// answered (and the connection closed after it), not refused with a 503 that nginx passes on.
t.test('a request that reaches a draining process on an open connection is answered, then the connection closes', async (t) => {
  const app = await buildApp(config)
  let closing: Promise<void> | undefined
  app.addHook('onRequest', async (request) => {
    if (request.url !== '/?first' || closing !== undefined) return
    // The shutdown starts while this request is being handled; the next one on the same
    // connection arrives once it is under way.
    closing = app.close()
    await sleep(20)
    client.write('GET /health HTTP/1.1\r\nHost: api\r\n\r\n')
    await sleep(50)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const client = connect(port, '127.0.0.1')
  client.setEncoding('utf8')
  let data = ''
  client.on('data', (chunk: string) => { data += chunk })
  const ended = new Promise((resolve) => client.on('close', resolve))
  client.write('GET /?first HTTP/1.1\r\nHost: api\r\n\r\n')
  await ended
  await closing
  const statuses = [...data.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])
  t.same(statuses, ['200', '200'], 'both answered')
  t.match(data, /"status":"(ok|degraded)"/, 'the second is the real /health answer')
  t.match(data, /connection: close/i, 'and the connection is closed after it')
})
