import { CompiledQuery, type Transaction } from 'kysely'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Database, Location } from '../db/schema.js'
import { isLockConflict, retryLockConflicts, type Db } from '../infra/db.js'
import type { HubDirectory } from '../hubs/directory.js'
import type { TrackingStatus } from '../tracking/statuses.js'
import type { EventInput } from '../writes/types.js'
import { Writer } from '../writes/writer.js'
import { upsertRows } from '../writes/sql.js'
import type { Fix, FixRefusal } from './fix.js'
import { distanceM } from './geo.js'
import { step, visitEventId, type Transition, type Zone } from './geofence.js'

/** A fix as received, for one vehicle. */
export interface FixItem {
  vehicleId: string
  fix: Fix
}

/** What became of one fix: stored and decided on, stored too late to decide, or refused. */
export type FixOutcome = 'accepted' | 'late' | 'VEHICLE_NOT_FOUND'

export interface FleetRules {
  /** GEOFENCE_RADIUS_M: hubs without a row in hub_geofences. */
  defaultRadiusM: number
  dwellMs: number
}

export interface ProcessResult {
  outcomes: FixOutcome[]
  arrivals: number
  departures: number
  /** Tracking events accepted (the duplicates of a replay are not counted). */
  events: number
}

/** The status an arrival or departure gives a parcel on board (see docs/fleet.md). */
export function statusFor (kind: Transition['kind'], hubId: number, receiverId: number | null): TrackingStatus {
  return kind === 'arrival' && hubId === receiverId ? 'Out for Delivery' : 'In Transit'
}

interface HubFence { id: number, lat: number, lng: number, radiusM: number, latSpan: number }

interface VehicleRow { id: string, fix_at: Date | null }

const ROWS_PER_INSERT = 1000

/** Thrown out of the writer inside our transaction, so that it does not retry in a rolled-back one. */
class TransactionAborted extends Error {
  constructor (readonly original: unknown) {
    super('transaction aborted')
  }
}

/** A Db whose `transaction()` is the one already open: the writer's events join our transaction. */
function joined (trx: Transaction<Database>): Db {
  return {
    transaction: () => ({
      execute: async <T>(fn: (t: Transaction<Database>) => Promise<T>): Promise<T> => {
        try {
          return await fn(trx)
        } catch (err) {
          throw isLockConflict(err) ? new TransactionAborted(err) : err
        }
      }
    })
  } as unknown as Db
}

const placeholders = (n: number, row = '?'): string => Array.from({ length: n }, () => row).join(', ')

/**
 * Fixes in, decisions out, all in one transaction per call: the vehicles are locked (in id order,
 * so that loading and other batches wait), each vehicle's fixes are taken in fix-time order, a fix
 * not newer than the vehicle's newest is stored in the track but decides nothing, the others move
 * the vehicle's position and its geofence state against every hub. Arrivals and departures become
 * tracking events for the parcels on board through the one write path, in the same transaction as
 * the geofence state that produced them, with ids derived from the visit, so a crash at any point
 * neither loses nor repeats one. `invalidate` runs after the commit with the orders changed.
 */
export class FleetProcessor {
  private fences: HubFence[] = []
  private fencesAt = 0

  constructor (
    private readonly db: Db,
    private readonly hubs: HubDirectory,
    private readonly rules: FleetRules,
    private readonly invalidate: (snos: readonly number[]) => Promise<unknown>,
    private readonly logger?: Logger
  ) {}

  /** `refused`: counts of fixes refused before this (malformed, future...), recorded in the same transaction. */
  async process (items: readonly FixItem[], refused: ReadonlyMap<FixRefusal, number> = new Map(), source = 'mqtt'): Promise<ProcessResult> {
    const fences = await this.loadFences()
    const { result, snos } = await retryLockConflicts(async () => {
      try {
        return await this.db.transaction().execute(async (trx) => await this.run(trx, items, fences, refused, source))
      } catch (err) {
        throw err instanceof TransactionAborted ? err.original : err
      }
    })
    if (snos.length > 0) {
      try {
        await this.invalidate(snos)
      } catch (err) {
        // The change relay replays the change log into the cache: logged, not fatal.
        this.logger?.warn({ err }, 'fleet: cache invalidation failed; the change relay will redo it')
      }
    }
    return result
  }

  private async run (trx: Transaction<Database>, items: readonly FixItem[], fences: HubFence[], refused: ReadonlyMap<FixRefusal, number>, source: string): Promise<{ result: ProcessResult, snos: number[] }> {
    const outcomes: FixOutcome[] = new Array(items.length)
    const result: ProcessResult = { outcomes, arrivals: 0, departures: 0, events: 0 }
    const byVehicle = new Map<string, number[]>()
    for (const [i, item] of items.entries()) {
      const list = byVehicle.get(item.vehicleId)
      if (list === undefined) byVehicle.set(item.vehicleId, [i])
      else list.push(i)
    }
    const ids = [...byVehicle.keys()].sort()
    const vehicles = new Map<string, VehicleRow>()
    const zones = new Map<string, Map<number, Zone>>()
    if (ids.length > 0) {
      const { rows } = await trx.executeQuery<VehicleRow>(CompiledQuery.raw(
        `SELECT id, fix_at FROM vehicles WHERE id IN (${placeholders(ids.length)}) ORDER BY id FOR UPDATE`, ids))
      for (const row of rows) vehicles.set(row.id, row)
      if (rows.length > 0) {
        const { rows: states } = await trx.executeQuery<{ vehicle_id: string, location_id: number, state: Zone['state'], since: Date }>(CompiledQuery.raw(
          `SELECT vehicle_id, location_id, state, since FROM geofence_states WHERE vehicle_id IN (${placeholders(rows.length)})`, rows.map((r) => r.id)))
        for (const s of states) {
          let m = zones.get(s.vehicle_id)
          if (m === undefined) zones.set(s.vehicle_id, (m = new Map()))
          m.set(Number(s.location_id), { state: s.state, since: s.since })
        }
      }
    }

    const counts = new Map<string, number>()
    const count = (name: string, n = 1): void => { if (n > 0) counts.set(name, (counts.get(name) ?? 0) + n) }
    for (const [code, n] of refused) count(`${source}.refused.${code}`, n)

    const now = new Date()
    const trackRows: unknown[] = []
    const vehicleUpdates: unknown[] = []
    const zoneUpserts: unknown[] = []
    const zoneDeletes: unknown[] = []
    const transitions: Array<{ vehicleId: string, hubId: number, t: Transition }> = []
    for (const [vehicleId, indexes] of byVehicle) {
      const vehicle = vehicles.get(vehicleId)
      if (vehicle === undefined) {
        for (const i of indexes) outcomes[i] = 'VEHICLE_NOT_FOUND'
        count(`${source}.refused.VEHICLE_NOT_FOUND`, indexes.length)
        continue
      }
      indexes.sort((a, b) => items[a].fix.at.getTime() - items[b].fix.at.getTime() || a - b)
      let newest = vehicle.fix_at?.getTime() ?? -Infinity
      let latest: Fix | undefined
      const vehicleZones = zones.get(vehicleId) ?? new Map<number, Zone>()
      const changed = new Set<number>()
      for (const i of indexes) {
        const fix = items[i].fix
        trackRows.push(vehicleId, fix.at, fix.lat, fix.lng, fix.speed, fix.heading, fix.accuracy, now)
        const at = fix.at.getTime()
        if (at <= newest) {
          outcomes[i] = 'late'
          continue
        }
        outcomes[i] = 'accepted'
        newest = at
        latest = fix
        for (const hub of fences) {
          if (fix.accuracy !== null && fix.accuracy > hub.radiusM) continue
          const zone = vehicleZones.get(hub.id)
          // Far from a hub with no state there: nothing can happen (cheap latitude test first).
          if (zone === undefined && Math.abs(fix.lat - hub.lat) > hub.latSpan) continue
          const next = step(zone, distanceM(fix.lat, fix.lng, hub.lat, hub.lng), fix.at, { radiusM: hub.radiusM, dwellMs: this.rules.dwellMs })
          if (next.zone !== zone) {
            changed.add(hub.id)
            if (next.zone === undefined) vehicleZones.delete(hub.id)
            else vehicleZones.set(hub.id, next.zone)
          }
          if (next.transition !== undefined) transitions.push({ vehicleId, hubId: hub.id, t: next.transition })
        }
      }
      count(`${source}.accepted`, indexes.filter((i) => outcomes[i] === 'accepted').length)
      count(`${source}.late`, indexes.filter((i) => outcomes[i] === 'late').length)
      if (latest !== undefined) {
        vehicleUpdates.push(vehicleId, latest.lat, latest.lng, latest.speed, latest.heading, latest.accuracy, latest.at, now)
      }
      for (const hubId of changed) {
        const zone = vehicleZones.get(hubId)
        if (zone === undefined) zoneDeletes.push(vehicleId, hubId)
        else zoneUpserts.push(vehicleId, hubId, zone.state, zone.since)
      }
    }

    const events = await this.transitionEvents(trx, transitions, result)
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < trackRows.length; i += 8 * ROWS_PER_INSERT) {
      const chunk = trackRows.slice(i, i + 8 * ROWS_PER_INSERT)
      writes.push(trx.executeQuery(CompiledQuery.raw(
        `INSERT IGNORE INTO vehicle_positions (vehicle_id, fix_at, lat, lng, speed, heading, accuracy, received_at) VALUES ${placeholders(chunk.length / 8, '(?, ?, ?, ?, ?, ?, ?, ?)')}`, chunk)))
    }
    if (vehicleUpdates.length > 0) {
      const n = vehicleUpdates.length / 8
      const rows = Array.from({ length: n }, (_, i) => i === 0
        ? 'SELECT ? AS id, ? AS lat, ? AS lng, ? AS speed, ? AS heading, ? AS accuracy, ? AS fix_at, ? AS seen_at'
        : 'SELECT ?, ?, ?, ?, ?, ?, ?, ?')
      writes.push(trx.executeQuery(CompiledQuery.raw(
        `UPDATE vehicles v JOIN (${rows.join(' UNION ALL ')}) n ON v.id = n.id
         SET v.lat = n.lat, v.lng = n.lng, v.speed = n.speed, v.heading = n.heading, v.accuracy = n.accuracy, v.fix_at = n.fix_at, v.seen_at = n.seen_at`,
        vehicleUpdates)))
    }
    if (zoneUpserts.length > 0) {
      writes.push(upsertRows(trx, 'geofence_states', ['vehicle_id', 'location_id', 'state', 'since'], zoneUpserts, 'state = v.state, since = v.since'))
    }
    if (zoneDeletes.length > 0) {
      writes.push(trx.executeQuery(CompiledQuery.raw(
        `DELETE FROM geofence_states WHERE (vehicle_id, location_id) IN (${placeholders(zoneDeletes.length / 2, '(?, ?)')})`, zoneDeletes)))
    }
    if (counts.size > 0) {
      const values = [...counts].flat()
      writes.push(upsertRows(trx, 'fleet_counters', ['name', 'count'], values, 'count = fleet_counters.count + v.count'))
    }
    // One connection: these run one after another, without waiting for each round trip in JS.
    await Promise.all(writes)

    let snos: number[] = []
    if (events.length > 0) {
      const writer = new Writer(joined(trx), { hubExists: async (id) => await this.hubs.has(id) })
      const results = await writer.applyEvents(events)
      const accepted = new Set<number>()
      for (const [i, r] of results.entries()) if (r.result === 'accepted') accepted.add(events[i].sno)
      result.events = results.filter((r) => r.result === 'accepted').length
      snos = [...accepted]
    }
    return { result, snos }
  }

  /**
   * The tracking events of these arrivals and departures for the parcels on board, in order per
   * vehicle; a parcel that arrives at its receiver hub has finished its route and is unloaded there.
   */
  private async transitionEvents (trx: Transaction<Database>, transitions: ReadonlyArray<{ vehicleId: string, hubId: number, t: Transition }>, result: ProcessResult): Promise<EventInput[]> {
    if (transitions.length === 0) return []
    const vehicleIds = [...new Set(transitions.map((t) => t.vehicleId))]
    const { rows } = await trx.executeQuery<{ sno: number, vehicle_id: string, receiver_location_id: number | null }>(CompiledQuery.raw(
      `SELECT p.sno, p.vehicle_id, o.receiver_location_id FROM vehicle_parcels p JOIN orders o ON o.sno = p.sno
       WHERE p.vehicle_id IN (${placeholders(vehicleIds.length)}) ORDER BY p.sno`, vehicleIds))
    const aboard = new Map<string, Map<number, number | null>>()
    for (const r of rows) {
      let m = aboard.get(r.vehicle_id)
      if (m === undefined) aboard.set(r.vehicle_id, (m = new Map()))
      m.set(Number(r.sno), r.receiver_location_id === null ? null : Number(r.receiver_location_id))
    }
    const events: EventInput[] = []
    const unloaded: unknown[] = []
    for (const { vehicleId, hubId, t } of transitions) {
      if (t.kind === 'arrival') result.arrivals++
      else result.departures++
      const parcels = aboard.get(vehicleId)
      if (parcels === undefined) continue
      const eventId = visitEventId(vehicleId, hubId, t.visit, t.kind)
      for (const [sno, receiver] of parcels) {
        events.push({ event_id: eventId, sno, status: statusFor(t.kind, hubId, receiver), location_id: hubId, occurred_at: t.at, vehicle_id: vehicleId })
        if (t.kind === 'arrival' && receiver === hubId) {
          parcels.delete(sno)
          unloaded.push(vehicleId, sno)
        }
      }
    }
    if (unloaded.length > 0) {
      await trx.executeQuery(CompiledQuery.raw(
        `DELETE FROM vehicle_parcels WHERE (vehicle_id, sno) IN (${placeholders(unloaded.length / 2, '(?, ?)')})`, unloaded))
    }
    return events
  }

  /** Hubs with their radii (hub_geofences, else GEOFENCE_RADIUS_M), re-read at most once a minute. */
  private async loadFences (): Promise<HubFence[]> {
    if (Date.now() - this.fencesAt < 60_000 && this.fences.length > 0) return this.fences
    const hubs: Location[] = await this.hubs.all()
    const radii = new Map((await this.db.selectFrom('hub_geofences').select(['location_id', 'radius_m']).execute()).map((r) => [Number(r.location_id), Number(r.radius_m)]))
    this.fences = hubs.map((h) => {
      const radiusM = radii.get(h.id) ?? this.rules.defaultRadiusM
      // 1.5 × radius in degrees of latitude, with room to spare: beyond it no state can start.
      return { id: h.id, lat: Number(h.lat), lng: Number(h.lng), radiusM, latSpan: (radiusM * 2) / 111_000 }
    })
    this.fencesAt = Date.now()
    return this.fences
  }
}
