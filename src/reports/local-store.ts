import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { createRequire } from 'node:module'
import { createConnection } from 'node:net'
import path from 'node:path'
import { SignatureV4 } from '@smithy/signature-v4'
import S3rver from 's3rver'
import type { Config } from '../config.js'

export interface LocalStoreOptions {
  port: number
  directory: string
  buckets?: string[]
  /** The only key pair the store accepts (SigV4, in a header or a presigned URL). */
  credentials: { accessKeyId: string, secretAccessKey: string }
}

interface KoaContext {
  method: string
  path: string
  query: Record<string, string | string[] | undefined>
  status: number
  body: unknown
  type: string
  req: IncomingMessage
  set: (name: string, value: string) => void
}

/** s3rver's account registry: the store's own key pair replaces its built-in S3RVER/S3RVER. */
interface AwsAccountModule {
  DUMMY_ACCOUNT: { createKeyPair: (id: string, secret: string) => void, revokeAccessKey: (id: string) => void, accessKeys: Map<string, string> }
}

/** node:crypto in the shape @smithy/signature-v4 wants (a hash, or an HMAC when given a key). */
class NodeSha256 {
  private readonly hash
  constructor (secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret))
  }

  update (data: string | ArrayBuffer | ArrayBufferView): void { this.hash.update(toBuffer(data)) }
  async digest (): Promise<Uint8Array> { return new Uint8Array(this.hash.digest()) }
  reset (): void { throw new Error('not supported') }
}

function toBuffer (data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

class S3AuthError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

const SKEW_MS = 15 * 60_000
const V4_HEADER = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/
const V4_CREDENTIAL = /^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/

function amzDate (value: string | undefined, what: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '')
  if (m === null) throw new S3AuthError(403, 'AccessDenied', `AWS authentication requires a valid ${what} (yyyyMMddTHHmmssZ)`)
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]))
}

const sameHex = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

/**
 * Checks a request's AWS Signature Version 4 (an Authorization header, or a presigned URL's
 * X-Amz-* query) against the store's one key pair, as S3 does: the canonical request is
 * rebuilt from what arrived (method, path, query, the headers it names as signed, the declared
 * payload hash) and signed again with @smithy/signature-v4. Anonymous requests, SigV2, other
 * keys, wrong signatures, expired URLs and clocks more than 15 minutes off are refused.
 */
export async function verifySignature (req: IncomingMessage, credentials: LocalStoreOptions['credentials'], now = new Date()): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://store.invalid')
  const query: Record<string, string | string[]> = {}
  for (const [key, value] of url.searchParams) {
    const seen = query[key]
    query[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
  }
  const authorization = req.headers.authorization
  const presigned = url.searchParams.has('X-Amz-Algorithm')
  if (authorization !== undefined && (presigned || url.searchParams.has('Signature'))) {
    throw new S3AuthError(400, 'InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified')
  }
  if (authorization === undefined && !presigned) {
    if (url.searchParams.has('Signature')) throw new S3AuthError(400, 'InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.')
    throw new S3AuthError(403, 'AccessDenied', 'Access Denied (this store refuses anonymous requests)')
  }

  let accessKeyId: string, day: string, region: string, service: string, signedHeaders: string[], provided: string, signingDate: Date
  let expiresIn = 0
  if (authorization !== undefined) {
    const m = V4_HEADER.exec(authorization.trim())
    if (m === null) {
      if (/^AWS /.test(authorization)) throw new S3AuthError(400, 'InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.')
      throw new S3AuthError(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed')
    }
    [, accessKeyId, day, region, service] = m
    signedHeaders = m[5].split(';')
    provided = m[6]
    signingDate = amzDate(req.headers['x-amz-date'] as string | undefined, 'x-amz-date header')
    if (Math.abs(now.getTime() - signingDate.getTime()) > SKEW_MS) throw new S3AuthError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.')
    if (typeof req.headers['x-amz-content-sha256'] !== 'string') throw new S3AuthError(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256')
  } else {
    const param = (name: string): string => {
      const value = query[name]
      if (typeof value !== 'string') throw new S3AuthError(400, 'AuthorizationQueryParametersError', `Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters (${name})`)
      return value
    }
    if (param('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw new S3AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    const m = V4_CREDENTIAL.exec(param('X-Amz-Credential'))
    if (m === null) throw new S3AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Credential is malformed')
    ;[, accessKeyId, day, region, service] = m
    signedHeaders = param('X-Amz-SignedHeaders').split(';')
    provided = param('X-Amz-Signature')
    signingDate = amzDate(param('X-Amz-Date'), 'X-Amz-Date')
    expiresIn = Number(param('X-Amz-Expires'))
    if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 604_800) throw new S3AuthError(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be from 1 to 604800 seconds')
    if (now.getTime() > signingDate.getTime() + expiresIn * 1000) throw new S3AuthError(403, 'AccessDenied', 'Request has expired')
    if (signingDate.getTime() - now.getTime() > SKEW_MS) throw new S3AuthError(403, 'AccessDenied', 'Request is not valid yet')
  }
  if (accessKeyId !== credentials.accessKeyId) throw new S3AuthError(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
  if (signingDate.toISOString().slice(0, 10).replace(/-/g, '') !== day) throw new S3AuthError(403, 'SignatureDoesNotMatch', 'The credential scope date does not match the request date')
  if (!signedHeaders.includes('host')) throw new S3AuthError(403, 'AccessDenied', 'The host header must be signed')

  const headers: Record<string, string> = {}
  for (const name of signedHeaders) {
    const value = req.headers[name]
    if (value === undefined) throw new S3AuthError(403, 'SignatureDoesNotMatch', `Signed header ${name} is missing`)
    headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  const signer = new SignatureV4({ service, region, credentials, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false })
  const rawPath = (req.url ?? '/').split('?')[0]
  const request = { method: req.method ?? 'GET', protocol: 'http:', hostname: headers.host ?? '', path: rawPath, headers, query }
  const signable = new Set(signedHeaders)
  let expected: string
  if (authorization !== undefined) {
    headers['x-amz-content-sha256'] ??= req.headers['x-amz-content-sha256'] as string
    const signed = await signer.sign(request, { signingDate, signableHeaders: signable, unsignableHeaders: signable.has('x-amz-content-sha256') ? undefined : new Set(['x-amz-content-sha256']) })
    expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization ?? '')?.[1] ?? ''
  } else {
    // Presigned URLs are signed over UNSIGNED-PAYLOAD, the header itself neither signed nor moved to the query.
    const noHash = new Set(['x-amz-content-sha256'])
    const signed = await signer.presign({ ...request, headers: { ...headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }, { signingDate, expiresIn, signableHeaders: signable, unsignableHeaders: noHash, unhoistableHeaders: noHash })
    expected = String(signed.query?.['X-Amz-Signature'] ?? '')
  }
  if (!sameHex(expected, provided)) {
    throw new S3AuthError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.')
  }
}

const xmlEscape = (text: string): string => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`)

/** Refuses, in S3's own error format, every request that verifySignature does not accept. */
function requireSignature (credentials: LocalStoreOptions['credentials']) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    try {
      await verifySignature(ctx.req, credentials)
    } catch (err) {
      if (!(err instanceof S3AuthError)) throw err
      ctx.status = err.status
      ctx.type = 'application/xml'
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message></Error>`
      return
    }
    await next()
  }
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
 * Like S3, it serves only requests signed (SigV4) with its key pair; s3rver itself checks
 * no SigV4 signature, so that is done here before s3rver sees the request.
 */
export async function startLocalStore (options: LocalStoreOptions): Promise<{ port: number, close: () => Promise<void> }> {
  await mkdir(options.directory, { recursive: true })
  const accounts = createRequire(import.meta.url)('s3rver/lib/models/account.js') as AwsAccountModule
  for (const id of [...accounts.DUMMY_ACCOUNT.accessKeys.keys()]) accounts.DUMMY_ACCOUNT.revokeAccessKey(id)
  accounts.DUMMY_ACCOUNT.createKeyPair(options.credentials.accessKeyId, options.credentials.secretAccessKey)
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    directory: options.directory,
    silent: true,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name }))
  })
  const koa = server as unknown as { middleware: unknown[] }
  koa.middleware.unshift(abortMultipartUpload(options.directory))
  koa.middleware.unshift(requireSignature(options.credentials))
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
  return await startLocalStore({ port: config.localPort, directory: config.localDirectory, buckets: [config.bucket], credentials: config.localCredentials })
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
