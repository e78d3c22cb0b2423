import { mkdir, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import path from 'node:path'
import S3rver from 's3rver'
import type { Config } from '../config.js'

export interface LocalStoreOptions {
  port: number
  directory: string
  buckets?: string[]
}

interface KoaContext {
  method: string
  path: string
  query: Record<string, string | string[] | undefined>
  status: number
}

/**
 * s3rver has no AbortMultipartUpload (it answers 405), so an interrupted upload would keep its
 * parts for ever. This adds it: the parts of the upload are deleted, as S3 does.
 */
function abortMultipartUpload (directory: string) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const uploadId = ctx.query.uploadId
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string') return await next()
    const bucket = ctx.path.split('/')[1] ?? ''
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || !/^[A-Za-z0-9_-]{1,128}$/.test(uploadId)) return await next()
    await rm(path.join(directory, bucket, '._S3rver_uploads', uploadId), { recursive: true, force: true })
    ctx.status = 204
  }
}

/**
 * The embedded S3-compatible store (s3rver) on loopback, used when no S3 is configured so that
 * a newcomer sees reports land under ./data/s3. Not for production: it keeps files on one disk.
 */
export async function startLocalStore (options: LocalStoreOptions): Promise<{ port: number, close: () => Promise<void> }> {
  await mkdir(options.directory, { recursive: true })
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    directory: options.directory,
    silent: true,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name }))
  })
  const koa = server as unknown as { middleware: unknown[] }
  koa.middleware.unshift(abortMultipartUpload(options.directory))
  const address = await server.run()
  return {
    port: address.port,
    close: async () => {
      const closing = server.close()
      // Clients keep connections alive; without this, close() waits for them indefinitely.
      server.httpServer?.closeAllConnections()
      await closing
    }
  }
}

export async function startEmbeddedStore (config: Config['s3']): Promise<{ port: number, close: () => Promise<void> }> {
  return await startLocalStore({ port: config.localPort, directory: config.localDirectory, buckets: [config.bucket] })
}

/** Whether something accepts connections at the embedded store's port. */
export async function localStoreAnswers (config: Config['s3']): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port: config.localPort })
    socket.setTimeout(500)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}
