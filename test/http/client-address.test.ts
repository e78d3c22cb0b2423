import { createServer, request as httpRequest } from 'node:http'
import Fastify from 'fastify'
import t from 'tap'
import proxyAddr from '@fastify/proxy-addr'
import { clientAddress, TRUST_MEMO_SIZE, trustProxyFunction } from '../../src/http/client-address.js'

// The hit shortcut reads the client address before Fastify sees the request (for the rate
// limit); it must be the address Fastify's request.ip gives the routes, for every TRUST_PROXY
// form the configuration accepts. Both read the same real requests here.
const settings: Array<string | number | false> = [false, 1, 2, '127.0.0.1,::1', '127.0.0.1', '10.0.0.0/8,127.0.0.1', '192.0.2.1']
const forwarded = [undefined, '', '203.0.113.9', '198.51.100.1, 203.0.113.9', '10.1.2.3, 203.0.113.9', '203.0.113.9, 10.1.2.3', 'not-an-address', '203.0.113.9,,10.9.9.9']

for (const setting of settings) {
  t.test(`TRUST_PROXY=${String(setting)}`, async (t) => {
    const trust = trustProxyFunction(setting)
    let seen = ''
    const app = Fastify({
      trustProxy: trust === false ? false : trust,
      serverFactory: (handler) => createServer((req, res) => {
        seen = clientAddress(req, trust)
        handler(req, res)
      })
    })
    app.get('/', async (request) => ({ ip: request.ip }))
    t.teardown(async () => await app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }
    for (const header of forwarded) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: header === undefined ? {} : { 'x-forwarded-for': header } }, (res) => {
          let text = ''
          res.on('data', (chunk: Buffer) => { text += chunk.toString() })
          res.on('end', () => resolve(text))
        })
        req.on('error', reject)
        req.end()
      })
      t.equal(seen, (JSON.parse(body) as { ip: string }).ip, `X-Forwarded-For: ${String(header)}`)
    }
  })
}

// The answer per address is kept (src/http/client-address.ts): asked again, after the memo has
// filled and started afresh, and for strings too long to keep, it is still the compiled check's.
t.test('a trust list answers as proxy-addr\'s compiled check, however often an address is asked', async (t) => {
  const list = '10.0.0.0/8,127.0.0.1,::1,192.0.2.1'
  const trust = trustProxyFunction(list)
  if (trust === false) throw new Error('a list compiles to a function')
  const check = proxyAddr.compile(list.split(','))
  const addresses = ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.200.3.4', '192.0.2.1', '192.0.2.2', '203.0.113.9', 'not-an-address', '', `${'1'.repeat(70)}`]
  // What Fastify and proxy-addr pass for a socket that has closed.
  const gone = undefined as unknown as string
  t.equal(trust(gone, 0), check(gone, 0), 'a closed socket\'s address')
  for (let round = 0; round < 3; round++) {
    for (const address of addresses) t.equal(trust(address, round), check(address, round), `round ${round}: ${address}`)
    // More distinct addresses than the memo keeps, half of them trusted.
    for (let i = 0; i <= TRUST_MEMO_SIZE; i++) {
      const address = `10.${(i >> 8) & 255}.${i & 255}.${round}`
      const other = `198.51.${(i >> 8) & 255}.${i & 255}`
      if (trust(address, 1) !== true || trust(other, 1) !== false) t.fail(`round ${round}: ${address} or ${other}`)
    }
  }
})
