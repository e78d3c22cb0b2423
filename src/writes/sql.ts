import { CompiledQuery, sql, type Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Db } from '../infra/db.js'
import type { OrderDraft } from '../orders/generator.js'

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

export type Executor = Transaction<Database> | Db

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
 * Writes recipients, orders (with their current status, hub and newest event time), every event
 * and each order's `order.created` change, in one multi-row statement each, on the given
 * executor. Call it inside a transaction (src/writes/writer.ts does).
 */
export async function insertOrders (trx: Executor, drafts: readonly OrderDraft[], options: InsertOptions): Promise<number[]> {
  const recipientIds = await insertReturningIds(
    drafts.length,
    options.idStep,
    async () => await insertRows(trx, 'recipients', RECIPIENT_COLUMNS, drafts.flatMap(({ recipient }) => recipientValues(recipient))),
    async (i) => await insertRows(trx, 'recipients', RECIPIENT_COLUMNS, recipientValues(drafts[i].recipient))
  )
  const orderValues = (i: number): unknown[] => {
    const { events, estimatedDelivery, route } = drafts[i].timeline
    const first = events[0]
    const last = events[events.length - 1]
    return [recipientIds[i], last.status, last.hub.id, estimatedDelivery, first.occurredAt, last.occurredAt, last.occurredAt, 1,
      route.sender.id, route.receiver.id, drafts[i].reference ?? null]
  }
  const snos = await insertReturningIds(
    drafts.length,
    options.idStep,
    async () => await insertRows(trx, 'orders', ORDER_COLUMNS, drafts.flatMap((_, i) => orderValues(i))),
    async (i) => await insertRows(trx, 'orders', ORDER_COLUMNS, orderValues(i))
  )
  const events: unknown[] = []
  const changes: unknown[] = []
  for (const [i, { timeline }] of drafts.entries()) {
    for (const event of timeline.events) events.push(snos[i], event.status, event.hub.id, event.occurredAt, null, null)
    const last = timeline.events[timeline.events.length - 1]
    changes.push(snos[i], 1, 'order.created', JSON.stringify({
      tracking_status: last.status,
      location_id: last.hub.id,
      occurred_at: last.occurredAt.toISOString(),
      events: timeline.events.length
    }))
  }
  if (events.length > 0) await insertRows(trx, 'tracking_events', EVENT_COLUMNS, events)
  if (changes.length > 0) await insertRows(trx, 'change_log', CHANGE_COLUMNS, changes)
  return snos
}

const RECIPIENT_COLUMNS = ['name', 'address', 'phone'] as const
const ORDER_COLUMNS = ['recipient_id', 'status', 'location_id', 'estimated_delivery', 'created_at', 'last_event_at', 'status_at', 'change_seq',
  'sender_location_id', 'receiver_location_id', 'reference'] as const
export const EVENT_COLUMNS = ['order_sno', 'status', 'location_id', 'occurred_at', 'event_id', 'vehicle_id'] as const
export const CHANGE_COLUMNS = ['sno', 'seq', 'kind', 'payload'] as const

const recipientValues = ({ name, address, phone }: OrderDraft['recipient']): unknown[] => [name, address, phone]

/**
 * One multi-row INSERT from a flat list of values, row after row. For hundreds of rows, building
 * Kysely's syntax tree (a node per value) cost more than the insert itself. Table and column
 * names are the constants above; every value is a bound parameter.
 */
export async function insertRows (trx: Executor, table: keyof Database, columns: readonly string[], values: unknown[]): Promise<{ insertId?: bigint }> {
  const row = `(${columns.map(() => '?').join(', ')}), `
  const statement = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${row.repeat(values.length / columns.length).slice(0, -2)}`
  return await trx.executeQuery(CompiledQuery.raw(statement, values))
}

/**
 * `count` rows of bound values as a derived table (`SELECT ? AS a, ? AS b UNION ALL SELECT ?, ?`),
 * for upserts and joined updates that read the new values by name (`v.a`). Unlike `VALUES(a)` in
 * ON DUPLICATE KEY UPDATE (deprecated in MySQL 8) and the `AS new` row alias (MySQL 8 only), this
 * works the same on MySQL 8 and MariaDB.
 */
export function derivedRows (columns: readonly string[], count: number): string {
  const first = `SELECT ${columns.map((c) => `? AS ${c}`).join(', ')}`
  const rest = `SELECT ${columns.map(() => '?').join(', ')}`
  return [first, ...Array.from({ length: count - 1 }, () => rest)].join(' UNION ALL ')
}

/** INSERT … ON DUPLICATE KEY UPDATE from a flat list of values; `updates` reads the new row as `v`. */
export async function upsertRows (trx: Executor, table: string, columns: readonly string[], values: unknown[], updates: string): Promise<void> {
  const rows = derivedRows(columns, values.length / columns.length)
  await trx.executeQuery(CompiledQuery.raw(
    `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM (${rows}) AS v ON DUPLICATE KEY UPDATE ${updates}`, values))
}
