import { CompiledQuery, sql, type Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Db } from '../infra/db.js'
import type { OrderDraft } from './generator.js'

export interface InsertOptions {
  /**
   * The step between the AUTO_INCREMENT ids of one multi-row INSERT, when they are known to be
   * evenly spaced (innodb_autoinc_lock_mode 0 or 1, MariaDB's default; the step is
   * auto_increment_increment, 1 unless Galera or multi-source replication sets it); 0 when
   * they are not (MySQL 8's default mode 2): rows whose ids are needed then go in one at a time.
   */
  idStep: number
}

const idSteps = new WeakMap<Db, Promise<number>>()

/** Reads innodb_autoinc_lock_mode and auto_increment_increment once per database handle. */
export async function autoIncrementStep (db: Db): Promise<number> {
  let known = idSteps.get(db)
  if (known === undefined) {
    known = sql<{ mode: number, step: number }>`SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step`.execute(db)
      .then(({ rows }) => Number(rows[0]?.mode) === 2 ? 0 : Number(rows[0]?.step ?? 1))
    known.catch(() => idSteps.delete(db))
    idSteps.set(db, known)
  }
  return await known
}

type Executor = Transaction<Database> | Db

async function insertReturningIds (
  count: number,
  step: number,
  insertMany: () => Promise<{ insertId?: bigint }>,
  insertOne: (i: number) => Promise<{ insertId?: bigint }>
): Promise<number[]> {
  if (count === 0) return []
  if (step > 0) {
    const { insertId } = await insertMany()
    const first = Number(insertId)
    return Array.from({ length: count }, (_, i) => first + i * step)
  }
  const ids: number[] = []
  for (let i = 0; i < count; i++) ids.push(Number((await insertOne(i)).insertId))
  return ids
}

/**
 * Writes recipients, orders (with their current status, hub and newest event time) and every
 * event in multi-row statements on the given executor. Call it inside a transaction.
 */
export async function insertOrders (trx: Executor, drafts: readonly OrderDraft[], options: InsertOptions): Promise<number[]> {
  const recipients = drafts.map((d) => d.recipient)
  const recipientIds = await insertReturningIds(
    drafts.length,
    options.idStep,
    async () => await trx.insertInto('recipients').values(recipients).executeTakeFirstOrThrow(),
    async (i) => await trx.insertInto('recipients').values(recipients[i]).executeTakeFirstOrThrow()
  )

  const orders = drafts.map(({ timeline }, i) => {
    const first = timeline.events[0]
    const last = timeline.events[timeline.events.length - 1]
    return {
      recipient_id: recipientIds[i],
      status: last.status,
      location_id: last.hub.id,
      estimated_delivery: timeline.estimatedDelivery,
      created_at: first.occurredAt,
      last_event_at: last.occurredAt
    }
  })
  const snos = await insertReturningIds(
    drafts.length,
    options.idStep,
    async () => await trx.insertInto('orders').values(orders).executeTakeFirstOrThrow(),
    async (i) => await trx.insertInto('orders').values(orders[i]).executeTakeFirstOrThrow()
  )

  // Several hundred rows: one statement with a flat parameter list (building Kysely's
  // per-value syntax tree for them cost more than the insert itself).
  const params: unknown[] = []
  for (const [i, { timeline }] of drafts.entries()) {
    for (const event of timeline.events) params.push(snos[i], event.status, event.hub.id, event.occurredAt)
  }
  if (params.length > 0) {
    const rows = '(?, ?, ?, ?), '.repeat(params.length / 4).slice(0, -2)
    await trx.executeQuery(CompiledQuery.raw(`INSERT INTO tracking_events (order_sno, status, location_id, occurred_at) VALUES ${rows}`, params))
  }
  return snos
}
