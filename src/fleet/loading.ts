import { CompiledQuery } from 'kysely'
import { retryLockConflicts, type Db } from '../infra/db.js'
import { MAX_FUTURE_MS, parseSno, parseTime } from '../writes/validate.js'
import { VEHICLE_ID } from './fix.js'

/** The most parcels one load or unload names. */
export const MAX_LOAD_SNOS = 500

export interface LoadMessage {
  type: 'vehicle.load' | 'vehicle.unload'
  vehicle_id: string
  snos: number[]
  location_id: number
  occurred_at: Date
}

export type LoadErrorCode =
  | 'LOAD_INVALID' // malformed message (400)
  | 'VEHICLE_NOT_FOUND' // 404
  | 'LOCATION_NOT_FOUND' | 'ORDER_NOT_FOUND' // 422
  | 'PARCEL_ON_OTHER_VEHICLE' | 'VEHICLE_FULL' // 409

export const LOAD_ERROR_STATUS: Record<LoadErrorCode, number> = {
  LOAD_INVALID: 400,
  VEHICLE_NOT_FOUND: 404,
  LOCATION_NOT_FOUND: 422,
  ORDER_NOT_FOUND: 422,
  PARCEL_ON_OTHER_VEHICLE: 409,
  VEHICLE_FULL: 409
}

export interface LoadDone {
  ok: true
  vehicle_id: string
  /** load: parcels put on board now; unload: parcels taken off now. */
  changed: number[]
  /** load: already on this vehicle; unload: were not on it. Neither is an error (a resent message). */
  unchanged: number[]
  on_board: number
  capacity: number
}

export interface LoadRefused {
  ok: false
  code: LoadErrorCode
  message: string
  /** The parcels concerned, where there are some. */
  snos?: number[]
}

export type LoadOutcome = LoadDone | LoadRefused

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A load or unload as sent (a queue message, or an HTTP body with the vehicle from the path), checked. */
export function parseLoad (raw: unknown, now = Date.now()): { ok: true, message: LoadMessage } | LoadRefused {
  const bad = (message: string): LoadRefused => ({ ok: false, code: 'LOAD_INVALID', message })
  if (!isObject(raw)) return bad('A load must be a JSON object { vehicle_id, snos, location_id, occurred_at }')
  if (raw.type !== 'vehicle.load' && raw.type !== 'vehicle.unload') return bad('type must be vehicle.load or vehicle.unload')
  if (typeof raw.vehicle_id !== 'string' || !VEHICLE_ID.test(raw.vehicle_id)) return bad('vehicle_id must be 1 to 32 letters, digits, dots, dashes or underscores')
  if (!Array.isArray(raw.snos) || raw.snos.length === 0 || raw.snos.length > MAX_LOAD_SNOS) return bad(`snos must be a list of 1 to ${MAX_LOAD_SNOS} serial numbers`)
  const snos: number[] = []
  for (const value of raw.snos) {
    const sno = parseSno(value)
    if (sno === undefined) return bad('every sno must be a positive integer')
    snos.push(sno)
  }
  const location = raw.location_id
  if (typeof location !== 'number' || !Number.isSafeInteger(location) || location < 1) return bad('location_id must be a positive integer')
  const at = parseTime(raw.occurred_at)
  if (at === undefined) return bad('occurred_at must be an ISO-8601 time with an offset, such as 2026-11-29T08:15:00+08:00')
  if (at.getTime() > now + MAX_FUTURE_MS) return bad('occurred_at may be at most 5 minutes in the future')
  return { ok: true, message: { type: raw.type, vehicle_id: raw.vehicle_id, snos: [...new Set(snos)].sort((a, b) => a - b), location_id: location, occurred_at: at } }
}

/**
 * Loading and unloading, for POST /vehicles/<id>/load|unload and the queue's `vehicle.load` /
 * `vehicle.unload` messages alike. `message` is the raw message (checked here) or one already
 * parsed. All or nothing, in one transaction that locks the vehicle row (as the geofence does,
 * so an arrival sees the manifest before or after a load, never half of it):
 * - load: every parcel must exist and be on no other vehicle (409 PARCEL_ON_OTHER_VEHICLE), and
 *   the vehicle must have room for the new ones (409 VEHICLE_FULL); parcels already on this
 *   vehicle are left as they are, so a resent message changes nothing;
 * - unload: parcels on this vehicle come off; others are reported as unchanged.
 * Returns `{ ok: false, code }` for a message that can never succeed (the queue dead-letters it);
 * throws only for transient trouble (database down, deadlock after retries), to be retried.
 */
export async function loadParcels (db: Db, message: unknown, options: { now?: number, hubExists?: (id: number) => Promise<boolean> } = {}): Promise<LoadOutcome> {
  const parsed = isParsed(message) ? { ok: true as const, message } : parseLoad(message, options.now)
  if (!parsed.ok) return parsed
  const msg = parsed.message
  const hubExists = options.hubExists ?? (async (id: number) => (await db.selectFrom('locations').select('id').where('id', '=', id).executeTakeFirst()) !== undefined)
  if (!await hubExists(msg.location_id)) return { ok: false, code: 'LOCATION_NOT_FOUND', message: `No hub with id ${msg.location_id}` }
  // Two loads of one parcel onto two vehicles at once: the loser sees the key taken; run it again.
  return await retryLockConflicts(async () => await db.transaction().execute(async (trx) => {
    const { rows: [vehicle] } = await trx.executeQuery<{ id: string, capacity: number }>(CompiledQuery.raw(
      'SELECT id, capacity FROM vehicles WHERE id = ? FOR UPDATE', [msg.vehicle_id]))
    if (vehicle === undefined) return { ok: false, code: 'VEHICLE_NOT_FOUND', message: `No vehicle with id ${msg.vehicle_id}` } satisfies LoadRefused
    const capacity = Number(vehicle.capacity)
    const marks = msg.snos.map(() => '?').join(', ')
    const { rows: [{ n: onBoardBefore }] } = await trx.executeQuery<{ n: number }>(CompiledQuery.raw(
      'SELECT COUNT(*) AS n FROM vehicle_parcels WHERE vehicle_id = ?', [msg.vehicle_id]))
    const { rows: placed } = await trx.executeQuery<{ sno: number, vehicle_id: string }>(CompiledQuery.raw(
      `SELECT sno, vehicle_id FROM vehicle_parcels WHERE sno IN (${marks}) FOR UPDATE`, msg.snos))
    const where = new Map(placed.map((p) => [Number(p.sno), p.vehicle_id]))
    if (msg.type === 'vehicle.unload') {
      const off = msg.snos.filter((sno) => where.get(sno) === msg.vehicle_id)
      if (off.length > 0) {
        await trx.executeQuery(CompiledQuery.raw(`DELETE FROM vehicle_parcels WHERE vehicle_id = ? AND sno IN (${off.map(() => '?').join(', ')})`, [msg.vehicle_id, ...off]))
      }
      return { ok: true, vehicle_id: msg.vehicle_id, changed: off, unchanged: msg.snos.filter((s) => !off.includes(s)), on_board: Number(onBoardBefore) - off.length, capacity } satisfies LoadDone
    }
    const { rows: known } = await trx.executeQuery<{ sno: number }>(CompiledQuery.raw(`SELECT sno FROM orders WHERE sno IN (${marks})`, msg.snos))
    const exists = new Set(known.map((k) => Number(k.sno)))
    const missing = msg.snos.filter((s) => !exists.has(s))
    if (missing.length > 0) return { ok: false, code: 'ORDER_NOT_FOUND', message: `No order with sno ${missing.join(', ')}`, snos: missing } satisfies LoadRefused
    const elsewhere = msg.snos.filter((s) => where.has(s) && where.get(s) !== msg.vehicle_id)
    if (elsewhere.length > 0) {
      return { ok: false, code: 'PARCEL_ON_OTHER_VEHICLE', message: `Already on another vehicle: ${elsewhere.map((s) => `${s} (${where.get(s) ?? ''})`).join(', ')}; unload it there first`, snos: elsewhere } satisfies LoadRefused
    }
    const fresh = msg.snos.filter((s) => !where.has(s))
    const total = Number(onBoardBefore) + fresh.length
    if (total > capacity) {
      return { ok: false, code: 'VEHICLE_FULL', message: `Vehicle ${msg.vehicle_id} holds ${Number(onBoardBefore)} of ${capacity} parcels; ${fresh.length} more do not fit` } satisfies LoadRefused
    }
    if (fresh.length > 0) {
      const values: unknown[] = []
      for (const sno of fresh) values.push(sno, msg.vehicle_id, msg.location_id, msg.occurred_at)
      await trx.executeQuery(CompiledQuery.raw(
        `INSERT INTO vehicle_parcels (sno, vehicle_id, location_id, loaded_at) VALUES ${fresh.map(() => '(?, ?, ?, ?)').join(', ')}`, values))
    }
    return { ok: true, vehicle_id: msg.vehicle_id, changed: fresh, unchanged: msg.snos.filter((s) => where.has(s)), on_board: total, capacity } satisfies LoadDone
  }), { alsoRetry: (err) => (err as { code?: string }).code === 'ER_DUP_ENTRY' })
}

function isParsed (message: unknown): message is LoadMessage {
  return isObject(message) && message.occurred_at instanceof Date
}
