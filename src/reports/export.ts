import { PassThrough, Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { Db } from '../infra/db.js'

export const CSV_HEADER = 'sno,status,hub,estimated_delivery,updated\n'

function csvField (value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value
}

/** Every order as CSV lines, read from MySQL as a stream (the driver pauses when we do). */
export async function * orderCsvLines (db: Db): AsyncGenerator<string> {
  const hubs = new Map((await db.selectFrom('locations').select(['id', 'title']).execute()).map((h) => [h.id, h.title]))
  yield CSV_HEADER
  const rows = db.selectFrom('orders')
    .select(['sno', 'status', 'location_id', 'estimated_delivery', 'last_event_at'])
    .orderBy('sno')
    .stream(1000)
  let chunk = ''
  let count = 0
  for await (const row of rows) {
    chunk += `${row.sno},${csvField(row.status)},${csvField(hubs.get(row.location_id) ?? String(row.location_id))},${row.estimated_delivery},${row.last_event_at.toISOString()}\n`
    if (++count % 1000 === 0) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk !== '') yield chunk
}

export interface ExportResult {
  key: string
  bytes: number
}

/**
 * Streams the CSV through gzip into a multipart upload: memory holds a few 5 MiB parts at
 * most, however many orders there are. On failure the upload is aborted, and `onOrphan`
 * receives its id so that the abort can be repeated should S3 have been unreachable for it.
 */
export async function exportOrders (
  db: Db,
  s3: S3Client,
  target: { bucket: string, key: string },
  options: { signal?: AbortSignal, onOrphan?: (uploadId: string) => void, gzipLevel?: number } = {}
): Promise<ExportResult> {
  const body = new PassThrough()
  let bytes = 0
  const count = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      callback(null, chunk)
    }
  })
  const upload = new Upload({
    client: s3,
    params: { Bucket: target.bucket, Key: target.key, Body: body, ContentType: 'application/gzip' },
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
    leavePartsOnError: false
  })
  const onAbort = (): void => { upload.abort().catch(() => {}) }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  const uploaded = upload.done()
  try {
    await Promise.all([
      pipeline(Readable.from(orderCsvLines(db)), createGzip({ level: options.gzipLevel ?? 6 }), count, body),
      uploaded
    ])
  } catch (err) {
    body.destroy()
    onAbort()
    await uploaded.catch(() => {})
    if (upload.uploadId !== undefined) options.onOrphan?.(upload.uploadId)
    throw err
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
  return { key: target.key, bytes }
}
