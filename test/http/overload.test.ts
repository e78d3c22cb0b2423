import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t, 'http_overload', { MAX_EVENT_LOOP_DELAY_MS: '50' })

function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy: what a CPU-bound burst does to the process */ }
}

t.test('an event loop lagging past MAX_EVENT_LOOP_DELAY_MS answers 503 with Retry-After at once', async (t) => {
  t.equal((await app.inject('/')).statusCode, 200, 'fine before')
  // Block across a whole sampling interval (200 ms); the overdue sample runs right after.
  blockEventLoop(600)
  await new Promise((resolve) => setTimeout(resolve, 0))
  const res = await app.inject('/query?sno=1')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { statusCode: 503, code: 'OVERLOADED' })
  t.equal(res.headers['retry-after'], '5')
  // Once the loop is calm again, requests are served again.
  await new Promise((resolve) => setTimeout(resolve, 700))
  t.equal((await app.inject('/')).statusCode, 200, 'recovers when the pressure is gone')
})
