import { CompiledQuery, sql } from 'kysely'
import type { Db } from '../infra/db.js'
import type { Location } from '../db/schema.js'
import { VEHICLE_ID } from './fix.js'
import { distanceM } from './geo.js'

/** Ten minutes without a fix: offline. */
export const OFFLINE_AFTER_MS = 10 * 60_000
/** Below this speed (km/h) a vehicle away from hubs is idle. */
export const MOVING_KMH = 5

export interface VehicleInput { id: string, name: string, capacity: number, home_location_id: number }

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A POST /vehicles body, checked: the vehicle, or a message saying what is wrong. */
export function parseVehicle (raw: unknown): VehicleInput | string {
  if (!isObject(raw)) return 'The body must be a JSON object { id, name, capacity, home_location_id }'
  if (typeof raw.id !== 'string' || !VEHICLE_ID.test(raw.id)) return 'id must be 1 to 32 letters, digits, dots, dashes or underscores (it is a topic level: fleet/<id>/position)'
  if (typeof raw.name !== 'string' || raw.name.trim() === '' || raw.name.length > 100) return 'name must be 1 to 100 characters'
  if (typeof raw.capacity !== 'number' || !Number.isSafeInteger(raw.capacity) || raw.capacity < 1 || raw.capacity > 100_000) return 'capacity must be an integer from 1 to 100000 (parcels)'
  if (typeof raw.home_location_id !== 'number' || !Number.isSafeInteger(raw.home_location_id) || raw.home_location_id < 1) return 'home_location_id must be a hub id'
  const unknown = Object.keys(raw).find((k) => !['id', 'name', 'capacity', 'home_location_id'].includes(k))
  if (unknown !== undefined) return `Unknown property ${unknown}`
  return { id: raw.id, name: raw.name.trim(), capacity: raw.capacity, home_location_id: raw.home_location_id }
}

/** Registers a vehicle: 'created', 'same' (already there as given) or 'conflict' (there, otherwise). */
export async function registerVehicle (db: Db, v: VehicleInput): Promise<'created' | 'same' | 'conflict'> {
  const result = await sql`INSERT IGNORE INTO vehicles (id, name, capacity, home_location_id) VALUES (${v.id}, ${v.name}, ${v.capacity}, ${v.home_location_id})`.execute(db)
  if (Number(result.numAffectedRows ?? 0) > 0) return 'created'
  const row = await db.selectFrom('vehicles').select(['name', 'capacity', 'home_location_id']).where('id', '=', v.id).executeTakeFirst()
  return row !== undefined && row.name === v.name && Number(row.capacity) === v.capacity && Number(row.home_location_id) === v.home_location_id ? 'same' : 'conflict'
}

/** The demo fleet: `count` vehicles spread round-robin over the hubs, ids `<CITY>-NN`; existing ones kept. */
export async function seedVehicles (db: Db, hubs: readonly Location[], count: number): Promise<{ created: number, total: number }> {
  let created = 0
  const sorted = [...hubs].sort((a, b) => a.id - b.id)
  for (let i = 0; i < count; i++) {
    const hub = sorted[i % sorted.length]
    const id = `H${String(hub.id).padStart(2, '0')}-${String(Math.floor(i / sorted.length) + 1).padStart(2, '0')}`
    const outcome = await registerVehicle(db, { id, name: `${hub.city} ${hub.title} 車 ${Math.floor(i / sorted.length) + 1}`.slice(0, 100), capacity: 200, home_location_id: hub.id })
    if (outcome === 'created') {
      created++
      // Parked at home, as last seen an hour ago (shows as offline until it reports).
      await db.updateTable('vehicles').set({ lat: Number(hub.lat), lng: Number(hub.lng), fix_at: new Date(Date.now() - 3_600_000), seen_at: new Date() }).where('id', '=', id).execute()
    }
  }
  const { n } = await db.selectFrom('vehicles').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  return { created, total: Number(n) }
}

export interface FleetEntry {
  id: string
  name: string
  capacity: number
  home_location_id: number
  position: { lat: number, lng: number, speed: number | null, heading: number | null, accuracy: number | null, ts: string } | null
  last_seen_at: string | null
  status: 'at_hub' | 'enroute' | 'idle' | 'offline'
  /** The hub it is at (`current`), else the nearest receiver hub of its parcels (`next`). */
  hub: { location_id: number, title: string, relation: 'current' | 'next' } | null
  parcels_on_board: number
}

interface Row {
  id: string
  name: string
  capacity: number
  home_location_id: number
  lat: number | null
  lng: number | null
  speed: number | null
  heading: number | null
  accuracy: number | null
  fix_at: Date | null
  seen_at: Date | null
}

/** Every vehicle (or one), as GET /fleet shows it: three statements, whatever the fleet's size. */
export async function fleetEntries (db: Db, hubs: ReadonlyMap<number, Location>, only?: string, now = Date.now()): Promise<FleetEntry[]> {
  const where = only === undefined ? '' : 'WHERE id = ?'
  const args = only === undefined ? [] : [only]
  const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(
    `SELECT id, name, capacity, home_location_id, lat, lng, speed, heading, accuracy, fix_at, seen_at FROM vehicles ${where} ORDER BY id`, args))
  if (rows.length === 0) return []
  const { rows: inside } = await db.executeQuery<{ vehicle_id: string, location_id: number }>(CompiledQuery.raw(
    `SELECT vehicle_id, location_id FROM geofence_states WHERE state = 'inside' ${only === undefined ? '' : 'AND vehicle_id = ?'}`, args))
  const { rows: loads } = await db.executeQuery<{ vehicle_id: string, receiver: number | null, n: number }>(CompiledQuery.raw(
    `SELECT p.vehicle_id, o.receiver_location_id AS receiver, COUNT(*) AS n FROM vehicle_parcels p JOIN orders o ON o.sno = p.sno
     ${only === undefined ? '' : 'WHERE p.vehicle_id = ?'} GROUP BY p.vehicle_id, o.receiver_location_id`, args))
  const atHub = new Map(inside.map((r) => [r.vehicle_id, Number(r.location_id)]))
  const cargo = new Map<string, { n: number, receivers: number[] }>()
  for (const l of loads) {
    const c = cargo.get(l.vehicle_id) ?? { n: 0, receivers: [] }
    c.n += Number(l.n)
    if (l.receiver !== null) c.receivers.push(Number(l.receiver))
    cargo.set(l.vehicle_id, c)
  }
  return rows.map((r) => {
    const c = cargo.get(r.id)
    const current = atHub.get(r.id)
    let hub: FleetEntry['hub'] = null
    if (current !== undefined) {
      hub = { location_id: current, title: hubs.get(current)?.title ?? '', relation: 'current' }
    } else if (c !== undefined && c.receivers.length > 0 && r.lat !== null && r.lng !== null) {
      const { lat, lng } = r
      const nearest = c.receivers
        .map((id) => ({ id, d: hubs.has(id) ? distanceM(lat, lng, Number(hubs.get(id)?.lat), Number(hubs.get(id)?.lng)) : Infinity }))
        .sort((a, b) => a.d - b.d)[0]
      hub = { location_id: nearest.id, title: hubs.get(nearest.id)?.title ?? '', relation: 'next' }
    }
    const silent = r.fix_at === null || now - r.fix_at.getTime() > OFFLINE_AFTER_MS
    const status: FleetEntry['status'] = silent ? 'offline' : current !== undefined ? 'at_hub' : r.speed === null || r.speed >= MOVING_KMH ? 'enroute' : 'idle'
    return {
      id: r.id,
      name: r.name,
      capacity: Number(r.capacity),
      home_location_id: Number(r.home_location_id),
      position: r.lat === null || r.lng === null || r.fix_at === null
        ? null
        : { lat: r.lat, lng: r.lng, speed: r.speed, heading: r.heading, accuracy: r.accuracy, ts: r.fix_at.toISOString() },
      last_seen_at: r.seen_at?.toISOString() ?? null,
      status,
      hub,
      parcels_on_board: c?.n ?? 0
    }
  })
}

/** The parcels on board, with their current status. */
export async function manifest (db: Db, vehicleId: string): Promise<Array<{ sno: number, loaded_at: string, loaded_location_id: number, tracking_status: string, receiver_location_id: number | null }>> {
  const { rows } = await db.executeQuery<{ sno: number, loaded_at: Date, location_id: number, status: string, receiver_location_id: number | null }>(CompiledQuery.raw(
    `SELECT p.sno, p.loaded_at, p.location_id, o.status, o.receiver_location_id FROM vehicle_parcels p JOIN orders o ON o.sno = p.sno
     WHERE p.vehicle_id = ? ORDER BY p.sno`, [vehicleId]))
  return rows.map((r) => ({ sno: Number(r.sno), loaded_at: r.loaded_at.toISOString(), loaded_location_id: Number(r.location_id), tracking_status: r.status, receiver_location_id: r.receiver_location_id === null ? null : Number(r.receiver_location_id) }))
}

/** The track since a time, oldest first, at most `limit` fixes. */
export async function track (db: Db, vehicleId: string, since: Date, limit: number): Promise<Array<{ ts: string, lat: number, lng: number, speed: number | null, heading: number | null, accuracy: number | null }>> {
  const rows = await db.selectFrom('vehicle_positions').select(['fix_at', 'lat', 'lng', 'speed', 'heading', 'accuracy'])
    .where('vehicle_id', '=', vehicleId).where('fix_at', '>=', since).orderBy('fix_at').limit(limit).execute()
  return rows.map((r) => ({ ts: r.fix_at.toISOString(), lat: r.lat, lng: r.lng, speed: r.speed, heading: r.heading, accuracy: r.accuracy }))
}

/** Counters of fixes accepted, late and refused (by reason and source), since the database was made. */
export async function intakeCounters (db: Db): Promise<Record<string, number>> {
  const rows = await db.selectFrom('fleet_counters').select(['name', 'count']).orderBy('name').execute()
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.count)]))
}

/** Deletes track rows older than the retention, in slices (no long lock); returns how many. */
export async function purgeTrack (db: Db, retentionDays: number, now = Date.now()): Promise<number> {
  const before = new Date(now - retentionDays * 86_400_000)
  let total = 0
  for (;;) {
    const r = await sql`DELETE FROM vehicle_positions WHERE fix_at < ${before} LIMIT 5000`.execute(db)
    const n = Number(r.numAffectedRows ?? 0)
    total += n
    if (n < 5000) return total
  }
}
