import { createServer, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { jsonAnswerHeaders, sendJsonAnswer } from '../../src/http/json-answer.js'

// sendJsonAnswer (the hit shortcut's send) makes the answer's head itself where it can; it must
// put on the wire exactly what Node's writeHead(200, jsonAnswerHeaders(…)) and end() put there,
// on every kind of connection. A real node:http server answers /fast with it and /node the
// usual way; a raw socket reads the bytes of both.
const BODY = Buffer.from(JSON.stringify({ sno: '1', tracking_status: 'Delivered', note: '台北物流中心' }))
const ID = 'c0ffee00-1'
let written = 0

function answer (res: ServerResponse, url = ''): void {
  // `?set`: a header set on the response before it is answered (writeHead sends it too).
  if (url.endsWith('?set')) res.setHeader('x-extra', 'yes')
  if (url.startsWith('/fast')) {
    const writeHead = res.writeHead.bind(res)
    res.writeHead = ((...args: Parameters<typeof res.writeHead>) => { written++; return writeHead(...args) }) as typeof res.writeHead
    sendJsonAnswer(res, ID, BODY, Date.now())
  } else {
    res.writeHead(200, jsonAnswerHeaders(ID, BODY.length))
    res.end(BODY)
  }
}

async function serve (configure: (server: Server) => void): Promise<number> {
  const server = createServer((req, res) => { answer(res, req.url) })
  configure(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return (server.address() as { port: number }).port
}

/**
 * Sends the requests one after another on one connection (each answer read before the next is
 * sent, so the connection stayed open for all of them), or all at once with `pipelined`; the raw
 * answers. With `closes`, waits for the server to close the connection after the last.
 */
async function exchange (port: number, requests: string[], closes: boolean, pipelined = false): Promise<string[]> {
  const socket = connect(port, '127.0.0.1')
  socket.setEncoding('latin1')
  const answers: string[] = []
  let buffered = ''
  let closedByServer = false
  let pending: (() => void) | undefined
  socket.on('data', (data: string) => { buffered += data; pending?.() })
  socket.on('end', () => { closedByServer = true; pending?.() })
  const complete = (): string | undefined => {
    const headEnd = buffered.indexOf('\r\n\r\n')
    if (headEnd < 0) return undefined
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(buffered.slice(0, headEnd))?.[1])
    const end = headEnd + 4 + length
    if (buffered.length < end) return undefined
    const one = buffered.slice(0, end)
    buffered = buffered.slice(end)
    return one
  }
  if (pipelined) socket.write(requests.join(''))
  for (const request of requests) {
    if (!pipelined) socket.write(request)
    const one = await new Promise<string>((resolve, reject) => {
      pending = () => {
        const got = complete()
        if (got !== undefined) resolve(got)
        else if (closedByServer) reject(new Error(`the server closed the connection mid-answer: ${JSON.stringify(buffered)}`))
      }
      pending()
    })
    answers.push(one)
  }
  if (closes && !closedByServer) await new Promise<void>((resolve) => { pending = () => { if (closedByServer) resolve() } })
  socket.destroy()
  return answers
}

const DATE = /\r\nDate: ([^\r]*)\r\n/
/** The answer with its Date header's value blanked (the two ways may straddle a second), after checking its form. */
function undated (raw: string): string {
  const date = DATE.exec(raw)?.[1] ?? ''
  if (new Date(date).toUTCString() !== date) throw new Error(`not an HTTP date: ${date}`)
  return raw.replace(DATE, '\r\nDate: -\r\n')
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`

t.test('on a connection kept alive, the head made here is the one Node makes', async (t) => {
  const port = await serve((server) => { server.keepAliveTimeout = 0 })
  const before = written
  const fast = await exchange(port, [get('/fast'), get('/fast'), get('/fast')], false)
  const node = await exchange(port, [get('/node'), get('/node'), get('/node')], false)
  t.equal(written, before, 'without writeHead')
  t.same(fast.map(undated), node.map(undated), 'the same bytes')
  t.match(fast[0], /\r\nConnection: keep-alive\r\n\r\n/)
  t.equal(fast[0].slice(-BODY.length), BODY.toString('latin1'), 'the body follows the head')
})

t.test('every kind of connection: the head made here where it can be, the same bytes as Node\'s', async (t) => {
  interface Case {
    name: string
    configure: (server: Server) => void
    requests: string[]
    /** How many of the answers go through writeHead. */
    slow: number
    /** What the last answer says about the connection. */
    last: RegExp
    /** Whether the server closes the connection after it. */
    closes: boolean
    pipelined?: boolean
  }
  const alive = /\r\nConnection: keep-alive\r\n\r\n/
  const close = /\r\nConnection: close\r\n/
  const cases: Case[] = [
    // Made here: the bytes must be Node's.
    { name: 'HTTP/1.0 with keep-alive', configure: (server) => { server.keepAliveTimeout = 0 }, requests: ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], slow: 0, last: alive, closes: false },
    { name: 'pipelined requests', configure: (server) => { server.keepAliveTimeout = 0 }, requests: [get('/'), get('/'), get('/')], slow: 0, last: alive, closes: false, pipelined: true },
    // Through writeHead: the count of its calls is what tells the two ways apart.
    { name: 'a header set on the response first', configure: (server) => { server.keepAliveTimeout = 0 }, requests: [get('/?set')], slow: 1, last: /\r\nx-extra: yes\r\n/, closes: false },
    { name: 'the client asks to close', configure: (server) => { server.keepAliveTimeout = 0 }, requests: [get('/', 'Connection: close\r\n')], slow: 1, last: close, closes: true },
    { name: 'HTTP/1.0 without keep-alive', configure: (server) => { server.keepAliveTimeout = 0 }, requests: ['GET / HTTP/1.0\r\n\r\n'], slow: 1, last: close, closes: true },
    // Node asks the client to close after the connection's last request, and leaves the closing to it.
    { name: 'the connection\'s last request', configure: (server) => { server.keepAliveTimeout = 0; server.maxRequestsPerSocket = 2 }, requests: [get('/'), get('/')], slow: 1, last: close, closes: false },
    { name: 'a server that sends Keep-Alive', configure: (server) => { server.keepAliveTimeout = 5000 }, requests: [get('/'), get('/')], slow: 2, last: /\r\nKeep-Alive: timeout=5\r\n/, closes: false }
  ]
  for (const { name, configure, requests, slow, last, closes, pipelined } of cases) {
    const port = await serve(configure)
    const before = written
    // Where the connection is to close, exchange() waits for the server to close it, both ways.
    const fast = await exchange(port, requests.map((r) => r.replace('GET /', 'GET /fast')), closes, pipelined)
    const node = await exchange(port, requests.map((r) => r.replace('GET /', 'GET /node')), closes, pipelined)
    t.equal(written - before, slow, `${name}: ${slow} through writeHead`)
    t.same(fast.map(undated), node.map(undated), `${name}: the same bytes`)
    t.match(fast.at(-1), last, name)
  }
})
