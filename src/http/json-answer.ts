import { OutgoingMessage, type ServerResponse } from 'node:http'
import { JSON_TYPE, SECURITY_HEADER_LIST } from './response-headers.js'

const ANSWER_HEADERS: string[] = [...SECURITY_HEADER_LIST.flat(), 'x-request-id', '', 'content-type', JSON_TYPE, 'content-length', '']
const REQUEST_ID_AT = ANSWER_HEADERS.indexOf('x-request-id') + 1
const LENGTH_AT = ANSWER_HEADERS.indexOf('content-length') + 1

/**
 * The headers of a JSON answer sent without Fastify (src/tracking/hit-shortcut.ts), in the
 * order Fastify sends them, as the flat name/value list `writeHead` takes: Node reads it by
 * index, where a header object is read key by key through property lookups that every other
 * header object the process has sent makes megamorphic.
 */
export function jsonAnswerHeaders (requestId: string, length: number): string[] {
  const headers = ANSWER_HEADERS.slice()
  headers[REQUEST_ID_AT] = requestId
  // A string, as every other caller gives Node: a number here alone made its header code deoptimize.
  headers[LENGTH_AT] = String(length)
  return headers
}

// The head `writeHead(200, jsonAnswerHeaders(id, length))` makes on a connection kept alive
// without a Keep-Alive header (the API's server: keepAliveTimeout 0), around its two variable
// parts and the date.
const HEAD_START = `HTTP/1.1 200 OK\r\n${SECURITY_HEADER_LIST.map(([name, value]) => `${name}: ${value}\r\n`).join('')}x-request-id: `
const HEAD_LENGTH = `\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: `
let dateSecond = -1
let headEnd = ''

/**
 * Node's key for the headers set on a response with setHeader (null while none is), found once on
 * a response of its own: none set is one of the conditions for making the head here, since
 * writeHead would send them too. Not found (another Node), every answer goes through writeHead.
 */
const OUT_HEADERS: symbol | undefined = Object.getOwnPropertySymbols(new OutgoingMessage()).find((key) => key.description === 'kOutHeaders')

/** What Node's ServerResponse keeps about a response's head: `_header` is the head once made. */
interface ResponseState {
  _header: string | null
  _keepAliveTimeout?: number
  _expect_continue?: boolean
  _removedConnection?: boolean
  maxRequestsOnConnectionReached?: boolean
}

/**
 * Sends a 200 JSON answer (`body`, with `requestId`) as `res.writeHead(200, jsonAnswerHeaders(…))`
 * and `res.end(body)` would, byte for byte. In the common case (a fresh response on a connection
 * kept alive, nothing set on it yet, no Keep-Alive header to send) the head is put together from
 * constant parts and given to Node as the head it would have made (`_header`, which end() sends
 * with the body): writeHead validates and classifies all eight header names and values on every
 * answer, which cost a bare node:http server sending our answers 7 % of its rate. Any other case,
 * such as a client asking to close or the connection's last request, goes through writeHead.
 * test/http/json-answer.test.ts checks both ways against Node's own.
 * `now` is Date.now(), for the Date header (per second, as Node's).
 */
export function sendJsonAnswer (res: ServerResponse, requestId: string, body: Buffer, now: number): void {
  const state = res as ServerResponse & ResponseState
  if (OUT_HEADERS !== undefined && (res as unknown as Record<symbol, unknown>)[OUT_HEADERS] === null && state._header === null && res.shouldKeepAlive && res.sendDate && res.statusCode === 200 && res.statusMessage === undefined &&
    state.maxRequestsOnConnectionReached !== true && state._keepAliveTimeout === 0 && state._expect_continue !== true && state._removedConnection !== true) {
    const second = Math.floor(now / 1000)
    if (second !== dateSecond) {
      headEnd = `\r\nDate: ${new Date(second * 1000).toUTCString()}\r\nConnection: keep-alive\r\n\r\n`
      dateSecond = second
    }
    res.statusMessage = 'OK'
    state._header = HEAD_START + requestId + HEAD_LENGTH + String(body.length) + headEnd
  } else {
    res.writeHead(200, jsonAnswerHeaders(requestId, body.length))
  }
  res.end(body)
}
