import { request, type IncomingMessage } from 'node:http'
import { eventually } from './app.js'

export interface SseEvent {
  id?: string
  event: string
  data: string
  /** When it arrived (Date.now()). */
  at: number
}

/** A Server-Sent Events client on a real connection: events and comments as they arrive. */
export class SseClient {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  status = 0
  headers: IncomingMessage['headers'] = {}
  ended = false
  private buffer = ''
  private readonly req

  constructor (url: string, headers: Record<string, string> = {}) {
    this.req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      this.status = res.statusCode ?? 0
      this.headers = res.headers
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { this.feed(chunk) })
      res.on('end', () => { this.ended = true })
      res.on('close', () => { this.ended = true })
    })
    this.req.on('error', () => { this.ended = true })
    this.req.end()
  }

  private feed (chunk: string): void {
    this.buffer += chunk
    let end: number
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      const event: SseEvent = { event: 'message', data: '', at: Date.now() }
      let isEvent = false
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim())
        else if (line.startsWith('id: ')) { event.id = line.slice(4); isEvent = true } else if (line.startsWith('event: ')) { event.event = line.slice(7); isEvent = true } else if (line.startsWith('data: ')) { event.data += line.slice(6); isEvent = true }
      }
      if (isEvent && event.data !== '') this.events.push(event)
    }
  }

  async waitFor (check: (client: SseClient) => boolean, timeoutMs = 10_000): Promise<boolean> {
    return await eventually(() => check(this), timeoutMs)
  }

  close (): void {
    this.req.destroy()
  }

  get lastId (): string | undefined {
    return this.events.filter((e) => e.id !== undefined).at(-1)?.id
  }
}
