import type { ServerResponse } from 'node:http'

/**
 * One Server-Sent Events response: events written as `id`/`event`/`data` blocks, a comment as a
 * heartbeat, and no write after the client has gone.
 */
export class EventStream {
  private readonly beat: Set<EventStream>
  private closed = false
  private readonly onClose: Array<() => void> = []

  constructor (private readonly res: ServerResponse, headers: Record<string, string | number | string[] | undefined>, heartbeatMs: number) {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // nginx: pass each event on at once instead of buffering the response.
      'x-accel-buffering': 'no',
      connection: 'keep-alive'
    })
    res.socket?.setNoDelay(true)
    // Tells EventSource how long to wait before reconnecting.
    res.write('retry: 2000\n\n')
    this.beat = heartbeatGroup(heartbeatMs)
    this.beat.add(this)
    res.on('close', () => { this.finish() })
  }

  get open (): boolean {
    return !this.closed
  }

  /** Runs when the stream ends, whoever ends it. */
  whenClosed (callback: () => void): void {
    if (this.closed) callback()
    else this.onClose.push(callback)
  }

  send (event: string, data: string, id?: number): void {
    if (this.closed) return
    this.res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`)
  }

  comment (text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`)
  }

  /** Ends the stream (shutdown, reload): the client reconnects elsewhere with Last-Event-ID. */
  end (): void {
    if (this.closed) return
    this.res.end()
    this.finish()
  }

  private finish (): void {
    if (this.closed) return
    this.closed = true
    this.beat.delete(this)
    for (const callback of this.onClose.splice(0)) callback()
  }
}

/**
 * Heartbeats: one timer per interval for all the streams that use it (a timer per stream costs
 * memory with thousands of them open); it stops when its last stream closes.
 */
const groups = new Map<number, { streams: Set<EventStream>, timer: NodeJS.Timeout }>()

function heartbeatGroup (ms: number): Set<EventStream> {
  let group = groups.get(ms)
  if (group === undefined) {
    const streams = new Set<EventStream>()
    const timer = setInterval(() => {
      if (streams.size === 0) {
        clearInterval(timer)
        groups.delete(ms)
        return
      }
      for (const stream of streams) stream.comment('ping')
    }, ms)
    timer.unref()
    groups.set(ms, group = { streams, timer })
  }
  return group.streams
}
