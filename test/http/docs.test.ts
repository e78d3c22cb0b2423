import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t, 'http_docs')

t.test('GET /openapi.json is OpenAPI 3.1 made from the route schemas', async (t) => {
  const res = await app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  const spec = res.json()
  t.equal(spec.openapi, '3.1.0')
  for (const path of ['/query', '/query/stream', '/fake', '/orders', '/events', '/webhooks', '/fleet', '/health']) {
    t.ok(spec.paths[path], `${path} is documented`)
  }
  t.ok(spec.paths['/query'].post, 'the batch lookup too')
  const answer = spec.paths['/query'].get.responses['200']
  t.ok(JSON.stringify(answer).includes('tracking_status'), 'the /query answer\'s fields come from its schema')
  t.notOk(spec.paths['/openapi.json'], 'the spec does not list itself')
})

t.test('GET /docs works with nothing from the internet', async (t) => {
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.notMatch(page.body, /https?:\/\/(?!127\.0\.0\.1|localhost)[a-z]/i, 'no external URL in the page')
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  const scripts = [...page.body.matchAll(/src="([^"]+)"/g)].map((m) => m[1])
  t.ok(scripts.length > 0)
  for (const src of scripts) {
    const res = await app.inject(new URL(src, 'http://x/docs/').pathname)
    t.equal(res.statusCode, 200, `${src} is served locally`)
  }
})
