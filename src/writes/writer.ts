import { CompiledQuery } from 'kysely'
import { retryLockConflicts, type Db } from '../infra/db.js'
import type { OrderDraft } from '../orders/generator.js'
import { applyEvent, type OrderState } from './status-rule.js'
import { autoIncrementStep, CHANGE_COLUMNS, EVENT_COLUMNS, insertOrders, insertRows, type Executor } from './sql.js'
import type { EventInput, EventResult } from './types.js'

/** Called once a write has committed, with the orders it changed (cache invalidation, live push). */
export type AfterCommit = (snos: readonly number[]) => Promise<void>

export interface WriterOptions {
  /** Hub ids that exist; an event at any other hub is rejected (LOCATION_NOT_FOUND). */
  hubExists: (id: number) => Promise<boolean>
  afterCommit?: AfterCommit
}

interface LockedOrder extends OrderState {
  sno: number
  change_seq: number
}

/**
 * The one write path. Every change to orders and their events (demo orders, bulk seeding,
 * POST /orders, POST /events, the queue consumer) goes through here: one transaction writes the
 * events, keeps each order's status, hub and times in step by the monotonic rule, and appends one
 * change_log row per order changed. After the commit, `afterCommit` runs with the orders
 * changed; should it never run (a crash), the change relay replays the log.
 */
export class Writer {
  constructor (private readonly db: Db, private readonly options: WriterOptions) {}

  /** New orders with their whole timelines (demo data, seeding, POST /orders): their snos, in order. */
  async createOrders (drafts: readonly OrderDraft[], executor?: Executor): Promise<number[]> {
    const idStep = await autoIncrementStep(this.db)
    const snos = executor === undefined
      ? await this.db.transaction().execute(async (trx) => await insertOrders(trx, drafts, { idStep }))
      : await insertOrders(executor, drafts, { idStep })
    if (executor === undefined) await this.committed(snos)
    return snos
  }

  /**
   * Events in, one result each in the same order: accepted, duplicate (the same event_id for the
   * same parcel was stored before, or earlier in this call) or rejected with a code. The accepted
   * ones commit together; a rejected one holds nothing back.
   */
  async applyEvents (events: readonly EventInput[]): Promise<EventResult[]> {
    if (events.length === 0) return []
    const results: EventResult[] = new Array(events.length)
    const candidates: number[] = []
    for (const [i, event] of events.entries()) {
      if (await this.options.hubExists(event.location_id)) candidates.push(i)
      else results[i] = { event_id: event.event_id, result: 'rejected', code: 'LOCATION_NOT_FOUND', message: `No hub with id ${event.location_id}` }
    }
    const changed = await retryLockConflicts(async () =>
      await this.db.transaction().execute(async (trx) => await this.writeEvents(trx, events, candidates, results)))
    await this.committed(changed)
    return results
  }

  private async writeEvents (trx: Executor, events: readonly EventInput[], candidates: readonly number[], results: EventResult[]): Promise<number[]> {
    const snos = [...new Set(candidates.map((i) => events[i].sno))].sort((a, b) => a - b)
    if (snos.length === 0) return []
    // Lock the orders (in key order, as every writer does) so that the duplicate check below and
    // the status rule see every event committed before, and no other writer of these orders runs
    // until this one commits.
    const { rows: locked } = await trx.executeQuery<LockedOrder>(CompiledQuery.raw(
      `SELECT sno, status, location_id, status_at, last_event_at, change_seq FROM orders WHERE sno IN (${placeholders(snos.length)}) ORDER BY sno FOR UPDATE`,
      snos))
    const orders = new Map(locked.map((o) => [Number(o.sno), { ...o, sno: Number(o.sno) }]))
    const known = await this.storedEventIds(trx, events, candidates)

    const eventRows: unknown[] = []
    const changeRows: unknown[] = []
    const seen = new Set<string>()
    const touched = new Set<LockedOrder>()
    for (const i of candidates) {
      const event = events[i]
      const order = orders.get(event.sno)
      if (order === undefined) {
        results[i] = { event_id: event.event_id, result: 'rejected', code: 'ORDER_NOT_FOUND', message: `No order with sno ${event.sno}` }
        continue
      }
      const key = `${event.sno}\u0000${event.event_id}`
      if (known.has(key) || seen.has(key)) {
        results[i] = { event_id: event.event_id, result: 'duplicate' }
        continue
      }
      seen.add(key)
      const next = applyEvent(order, event)
      order.status = next.status
      order.location_id = next.location_id
      order.status_at = next.status_at
      order.last_event_at = next.last_event_at
      order.change_seq += 1
      touched.add(order)
      eventRows.push(event.sno, event.status, event.location_id, event.occurred_at, event.event_id, event.vehicle_id ?? null)
      changeRows.push(event.sno, order.change_seq, 'tracking.event', JSON.stringify({
        event_id: event.event_id,
        status: event.status,
        location_id: event.location_id,
        occurred_at: event.occurred_at.toISOString(),
        ...(event.vehicle_id === undefined ? {} : { vehicle_id: event.vehicle_id }),
        tracking_status: order.status,
        current_location_id: order.location_id
      }))
      results[i] = { event_id: event.event_id, result: 'accepted' }
    }
    if (eventRows.length === 0) return []
    await insertRows(trx, 'tracking_events', EVENT_COLUMNS, eventRows)
    await insertRows(trx, 'change_log', CHANGE_COLUMNS, changeRows)
    await updateOrders(trx, [...touched])
    return [...touched].map((o) => o.sno)
  }

  /** The (sno, event_id) pairs among these events that are already stored. */
  private async storedEventIds (trx: Executor, events: readonly EventInput[], candidates: readonly number[]): Promise<Set<string>> {
    const pairs: unknown[] = []
    for (const i of candidates) pairs.push(events[i].sno, events[i].event_id)
    const { rows } = await trx.executeQuery<{ order_sno: number, event_id: string }>(CompiledQuery.raw(
      `SELECT order_sno, event_id FROM tracking_events WHERE (order_sno, event_id) IN (${Array.from({ length: candidates.length }, () => '(?, ?)').join(', ')})`,
      pairs))
    return new Set(rows.map((r) => `${Number(r.order_sno)}\u0000${r.event_id}`))
  }

  private async committed (snos: readonly number[]): Promise<void> {
    if (snos.length === 0 || this.options.afterCommit === undefined) return
    await this.options.afterCommit(snos)
  }
}

/** Every changed order's new state in one statement (a join on the rows as a derived table). */
async function updateOrders (trx: Executor, orders: readonly LockedOrder[]): Promise<void> {
  if (orders.length === 0) return
  const values: unknown[] = []
  const rows = orders.map((o, i) => {
    values.push(o.sno, o.status, o.location_id, o.status_at, o.last_event_at, o.change_seq)
    return i === 0
      ? 'SELECT ? AS sno, ? AS status, ? AS location_id, ? AS status_at, ? AS last_event_at, ? AS change_seq'
      : 'SELECT ?, ?, ?, ?, ?, ?'
  })
  await trx.executeQuery(CompiledQuery.raw(
    `UPDATE orders o JOIN (${rows.join(' UNION ALL ')}) v ON o.sno = v.sno
     SET o.status = v.status, o.location_id = v.location_id, o.status_at = v.status_at,
         o.last_event_at = v.last_event_at, o.change_seq = v.change_seq`,
    values))
}

const placeholders = (count: number): string => Array.from({ length: count }, () => '?').join(', ')
