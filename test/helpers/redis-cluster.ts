import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

const run = promisify(execFile)

async function portFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port P with P and P + 10000 (its cluster bus) both free. */
async function clusterPort (taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 25000)
    if (taken.has(port) || taken.has(port + 10000)) continue
    if (await portFree(port) && await portFree(port + 10000)) {
      taken.add(port)
      taken.add(port + 10000)
      return port
    }
  }
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis cluster: ${what} did not happen within ${timeoutMs} ms`)
}

/**
 * A real 3-master Redis Cluster on free ports, in a temporary folder of its own (configuration,
 * snapshots). Started by `RedisCluster.start(t)`; stopped, and its folder removed, at the end of
 * the test. Nodes persist nothing unless a test saves a snapshot (`save(i)`), which a restart
 * (`restart(i)`) then loads.
 */
export class RedisCluster {
  private readonly children: Array<ChildProcess | undefined> = []
  private readonly admins: Redis[] = []

  private constructor (readonly ports: number[], readonly dir: string) {}

  static async start (t: Test, masters = 3): Promise<RedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'))
    const taken = new Set<number>()
    const ports: number[] = []
    for (let i = 0; i < masters; i++) ports.push(await clusterPort(taken))
    const cluster = new RedisCluster(ports, dir)
    t.teardown(async () => { await cluster.stop() })
    for (let i = 0; i < masters; i++) await cluster.startNode(i)
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 })
    await cluster.waitHealthy()
    return cluster
  }

  /** REDIS_CLUSTER_NODES for this cluster. */
  get nodes (): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',')
  }

  /** A plain connection to node `i` (no prefix). */
  admin (i: number): Redis {
    this.admins[i] ??= (() => {
      const redis = new Redis(this.ports[i], '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
      redis.on('error', () => {})
      return redis
    })()
    return this.admins[i]
  }

  /** The node (index) that owns a slot. */
  async ownerOf (slot: number): Promise<number> {
    const slots = await this.admin(0).cluster('SLOTS')
    const range = slots.find(([from, to]) => slot >= from && slot <= to)
    const owner = range?.[2]
    if (owner === undefined) throw new Error(`no owner for slot ${slot}`)
    return this.ports.indexOf(Number(owner[1]))
  }

  async runId (i: number): Promise<string> {
    return /run_id:(\w+)/.exec(await this.admin(i).info('server'))?.[1] ?? ''
  }

  /** Writes node `i`'s snapshot now (SAVE), which its next start loads. */
  async save (i: number): Promise<void> {
    await this.admin(i).save()
  }

  /** Where node `i` writes its snapshot. */
  snapshotFile (i: number): string {
    return join(this.dir, `dump-${this.ports[i]}.rdb`)
  }

  /** Kills node `i` (SIGKILL: nothing saved) and starts it again on the same port and files. */
  async restart (i: number): Promise<void> {
    await this.kill(i)
    await this.startNode(i)
    await this.waitHealthy()
  }

  async kill (i: number): Promise<void> {
    const child = this.children[i]
    this.children[i] = undefined
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** Every node says cluster_state:ok and agrees on who owns all 16384 slots. */
  async waitHealthy (): Promise<void> {
    await waitFor('cluster_state:ok on every node', async () => {
      for (let i = 0; i < this.ports.length; i++) {
        const info = await this.admin(i).cluster('INFO') as string
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false
      }
      return true
    })
  }

  async stop (): Promise<void> {
    for (const admin of this.admins) admin?.disconnect()
    for (let i = 0; i < this.ports.length; i++) await this.kill(i)
    await rm(this.dir, { recursive: true, force: true })
  }

  private async startNode (i: number): Promise<void> {
    const port = this.ports[i]
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '5000',
      '--save', '', '--appendonly', 'no', '--dir', this.dir, '--dbfilename', `dump-${port}.rdb`, '--rdbcompression', 'no'
    ], { stdio: 'ignore' })
    this.children[i] = child
    await waitFor(`node ${port} answering`, async () => {
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on('error', () => {})
      try {
        await probe.connect()
        return await probe.ping() === 'PONG'
      } finally {
        probe.disconnect()
      }
    }, 10_000)
  }
}
