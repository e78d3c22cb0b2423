import type { FastifyInstance } from 'fastify'
import type { Db } from '../infra/db.js'
import type { Access } from '../http/auth.js'
import type { FleetConfig } from '../config.js'
import { HttpError, badRequest, notFound } from '../http/errors.js'
import { acceptJsonBodies } from '../http/json-body.js'
import { parseTime } from '../writes/validate.js'
import { parseFix, VEHICLE_ID, type FixRefusal } from './fix.js'
import { LOAD_ERROR_STATUS, loadParcels } from './loading.js'
import { FleetProcessor, type FixItem } from './processor.js'
import { fleetEntries, intakeCounters, manifest, parseVehicle, registerVehicle, track } from './vehicles.js'

/** Fixes per POST /vehicles/<id>/positions. */
export const MAX_FIXES = 1000
const TRACK_LIMIT = 10_000

function vehicleParam (params: unknown): string {
  const id = (params as { id?: string }).id ?? ''
  if (!VEHICLE_ID.test(id)) throw badRequest('VEHICLE_ID_INVALID', 'A vehicle id is 1 to 32 letters, digits, dots, dashes or underscores')
  return id
}

/**
 * The fleet over HTTP: POST /vehicles (admin), positions, load and unload (ingest), GET /fleet and
 * GET /fleet/<id> (open, as /query is). JSON bodies in this plugin's scope only.
 */
export async function fleetRoutes (app: FastifyInstance, { db, access, fleet }: { db: Db, access: Access, fleet: FleetConfig }): Promise<void> {
  acceptJsonBodies(app)
  const processor = new FleetProcessor(db, app.hubs, { defaultRadiusM: fleet.geofenceRadiusM, dwellMs: fleet.geofenceDwellS * 1000 },
    async (snos) => await app.tracking.invalidate(snos), app.log)
  const hubMap = async (): Promise<Map<number, Awaited<ReturnType<typeof app.hubs.all>>[number]>> => new Map((await app.hubs.all()).map((h) => [h.id, h]))

  app.post('/vehicles', { onRequest: access.guard('admin'), bodyLimit: 4096 }, async (request, reply) => {
    const vehicle = parseVehicle(request.body)
    if (typeof vehicle === 'string') throw badRequest('VEHICLE_INVALID', vehicle)
    if (!await app.hubs.has(vehicle.home_location_id)) throw new HttpError(422, 'LOCATION_NOT_FOUND', `No hub with id ${vehicle.home_location_id}`)
    const outcome = await registerVehicle(db, vehicle)
    if (outcome === 'conflict') throw new HttpError(409, 'VEHICLE_EXISTS', `Vehicle ${vehicle.id} is already registered with other details`)
    const [entry] = await fleetEntries(db, await hubMap(), vehicle.id)
    return await reply.code(outcome === 'created' ? 201 : 200).send(entry)
  })

  app.post('/vehicles/:id/positions', { onRequest: access.guard('ingest'), bodyLimit: 256 * 1024 }, async (request) => {
    const vehicleId = vehicleParam(request.params)
    const body = request.body as unknown
    const list = Array.isArray(body) ? body : [body]
    if (list.length === 0 || list.length > MAX_FIXES) throw badRequest('POSITIONS_INVALID', `Send one position or an array of 1 to ${MAX_FIXES}`)
    const now = Date.now()
    const results: Array<{ result: 'accepted' | 'late' | 'rejected', code?: string, message?: string }> = new Array(list.length)
    const items: FixItem[] = []
    const where: number[] = []
    const refused = new Map<FixRefusal, number>()
    for (const [i, raw] of list.entries()) {
      const parsed = parseFix(raw, now)
      if (parsed.ok) {
        items.push({ vehicleId, fix: parsed.fix })
        where.push(i)
      } else {
        results[i] = { result: 'rejected', code: parsed.code, message: parsed.message }
        refused.set(parsed.code, (refused.get(parsed.code) ?? 0) + 1)
      }
    }
    const outcome = await processor.process(items, refused, 'http')
    for (const [j, o] of outcome.outcomes.entries()) {
      if (o === 'VEHICLE_NOT_FOUND') throw notFound('VEHICLE_NOT_FOUND', `No vehicle with id ${vehicleId}; register it with POST /vehicles`)
      results[where[j]] = { result: o }
    }
    return { results, arrivals: outcome.arrivals, departures: outcome.departures, events: outcome.events }
  })

  for (const kind of ['load', 'unload'] as const) {
    app.post(`/vehicles/:id/${kind}`, { onRequest: access.guard('ingest'), bodyLimit: 64 * 1024 }, async (request) => {
      const vehicleId = vehicleParam(request.params)
      const body = request.body as unknown
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('LOAD_INVALID', 'The body must be a JSON object { snos, location_id, occurred_at }')
      const outcome = await loadParcels(db, { ...body, type: `vehicle.${kind}`, vehicle_id: vehicleId }, { hubExists: async (id) => await app.hubs.has(id) })
      if (!outcome.ok) throw new HttpError(LOAD_ERROR_STATUS[outcome.code], outcome.code, outcome.message)
      return outcome
    })
  }

  app.get('/fleet', async () => {
    const [vehicles, intake] = await Promise.all([fleetEntries(db, await hubMap()), intakeCounters(db)])
    return { vehicles, intake }
  })

  app.get('/fleet/:id', async (request) => {
    const vehicleId = vehicleParam(request.params)
    const sinceRaw = (request.query as { since?: string }).since
    let since = new Date(Date.now() - 3_600_000)
    if (sinceRaw !== undefined) {
      const parsed = /^\d{1,15}$/.test(sinceRaw) ? new Date(Number(sinceRaw)) : parseTime(sinceRaw)
      if (parsed === undefined) throw badRequest('SINCE_INVALID', 'since must be an ISO-8601 time with an offset or epoch milliseconds')
      since = parsed
    }
    const [entry] = await fleetEntries(db, await hubMap(), vehicleId)
    if (entry === undefined) throw notFound('VEHICLE_NOT_FOUND', `No vehicle with id ${vehicleId}`)
    const [parcels, points] = await Promise.all([manifest(db, vehicleId), track(db, vehicleId, since, TRACK_LIMIT)])
    return { ...entry, manifest: parcels, track: { since: since.toISOString(), points, truncated: points.length === TRACK_LIMIT } }
  })
}
