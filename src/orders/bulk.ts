import { sql } from 'kysely'
import { retryLockConflicts, type Db } from '../infra/db.js'
import { listHubs } from '../hubs/hubs.js'
import { OrderGenerator, type OrderDraft } from './generator.js'
import { Writer } from '../writes/writer.js'

export interface BulkLoadOptions {
  count: number
  batchSize?: number
  /** Batches written at the same time (each on its own connection). */
  concurrency?: number
  seed?: number
  now?: Date
  onProgress?: (done: number) => void
}

/**
 * Loads demo orders fast: orders are made in batches while earlier batches are being written,
 * each batch is one transaction of the write path (a multi-row INSERT per table).
 *
 * The first batch is written alone. Into an empty table, with the checks off, InnoDB inserts in
 * bulk under a table lock; two such first inserts at once deadlock each other (seen on MariaDB
 * 10.11). A batch that still loses a deadlock is written again.
 */
export async function bulkLoadOrders (db: Db, options: BulkLoadOptions): Promise<{ orders: number, events: number }> {
  const { count, batchSize = 2000, concurrency = 2, now = new Date() } = options
  const hubs = await listHubs(db)
  if (hubs.length < 3) throw new Error('No hubs loaded: run the hub seed first')
  // Nothing is cached for orders that do not exist yet, and every hub comes from the table.
  const writer = new Writer(db, { hubExists: async () => true })
  const generator = new OrderGenerator(options.seed)

  let done = 0
  let events = 0
  let failure: { err: unknown } | undefined
  const writing = new Set<Promise<void>>()
  for (let start = 0; start < count; start += batchSize) {
    const drafts = Array.from({ length: Math.min(batchSize, count - start) }, () => generator.draft(hubs, now))
    for (const d of drafts) events += d.timeline.events.length
    // The second batch waits for the first to end (see above); the rest run `concurrency` at once.
    while (writing.size >= (start === batchSize ? 1 : concurrency)) await Promise.race(writing)
    if (failure !== undefined) break
    const write = writeBatch(db, writer, drafts).then(() => {
      done += drafts.length
      options.onProgress?.(done)
    }, (err: unknown) => { failure ??= { err } })
    const tracked = write.finally(() => writing.delete(tracked))
    writing.add(tracked)
  }
  // A failed batch stops the load, once the batches already under way have ended.
  await Promise.all(writing)
  if (failure !== undefined) throw failure.err
  return { orders: done, events }
}

async function writeBatch (db: Db, writer: Writer, drafts: OrderDraft[]): Promise<void> {
  await retryLockConflicts(async () => await db.connection().execute(async (conn) => {
    // The rows reference hubs and orders made in the same batch; the checks would only re-read them.
    await sql`SET SESSION foreign_key_checks = 0, unique_checks = 0`.execute(conn)
    try {
      await conn.transaction().execute(async (trx) => { await writer.createOrders(drafts, trx) })
    } finally {
      await sql`SET SESSION foreign_key_checks = 1, unique_checks = 1`.execute(conn)
    }
  }))
}
