import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'

export type ProxyMode = 'pass' | 'refuse' | 'blackhole'

/**
 * A TCP proxy a test controls: `pass` forwards (optionally with added latency), `refuse`
 * drops every connection and refuses new ones, `blackhole` accepts and keeps connections but
 * forwards nothing (a cable pulled, a frozen server).
 */
export class TcpProxy {
  mode: ProxyMode = 'pass'
  latencyMs = 0
  private readonly sockets = new Set<Socket>()
  private server: Server | undefined

  private constructor (readonly targetPort: number, private listenPort: number) {}

  static async start (t: Test, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, 0)
    await proxy.listen()
    t.teardown(async () => await proxy.close())
    return proxy
  }

  get port (): number {
    return this.listenPort
  }

  private async listen (): Promise<void> {
    const server = createServer((client) => this.accept(client))
    // A failure to listen (the port taken meanwhile, on restore) fails the call, not the process.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.listenPort, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    this.server = server
    this.listenPort = (server.address() as { port: number }).port
  }

  private accept (client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort })
    for (const s of [client, upstream]) {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
      s.on('error', () => { client.destroy(); upstream.destroy() })
    }
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => {
        if (this.mode !== 'pass') return // blackhole: swallowed
        if (this.latencyMs > 0) setTimeout(() => to.write(chunk), this.latencyMs)
        else to.write(chunk)
      })
      from.on('end', () => to.end())
    }
    forward(client, upstream)
    forward(upstream, client)
  }

  /** Drops every connection; new ones are refused until `restore()`. */
  async refuse (): Promise<void> {
    this.mode = 'refuse'
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server?.close(() => resolve()))
    this.server = undefined
  }

  /** Keeps connections open but forwards nothing, and accepts new ones that go nowhere. */
  blackhole (): void {
    this.mode = 'blackhole'
  }

  async restore (): Promise<void> {
    if (this.server === undefined) await this.listen()
    this.mode = 'pass'
  }

  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server === undefined ? resolve() : this.server.close(() => resolve()))
  }
}
