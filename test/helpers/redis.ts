import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Deletes every key under the config's prefix (before and after the test). */
export async function clearKeys (t: Test, config: Config): Promise<Redis> {
  const admin = new Redis(config.redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  const clear = async (): Promise<void> => {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${config.redis.keyPrefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await admin.del(...keys)
    } while (cursor !== '0')
  }
  await clear()
  t.teardown(async () => {
    await clear().catch(() => {})
    admin.disconnect()
  })
  return admin
}

/** A private redis-server that a test may kill, freeze (SIGSTOP) and bring back. */
export class PrivateRedis {
  private child: ChildProcess | undefined
  constructor (readonly port: number, private readonly args: readonly string[] = []) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}/0`
  }

  /** `args` are added to redis-server's command line (they override the defaults: no persistence). */
  static async start (t: Test, args: readonly string[] = []): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), args)
    await redis.start()
    t.teardown(() => redis.kill())
    return redis
  }

  async start (): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.args], { stdio: 'ignore' })
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on('error', () => {})
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        probe.disconnect()
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    throw new Error(`redis-server on port ${this.port} did not start`)
  }

  kill (): void {
    if (this.child?.exitCode === null) {
      this.child.kill('SIGCONT')
      this.child.kill('SIGKILL')
    }
    this.child = undefined
  }

  freeze (): void { this.child?.kill('SIGSTOP') }
  thaw (): void { this.child?.kill('SIGCONT') }
}
