import { upsertRows } from '../writes/sql.js'
import type { Db } from '../infra/db.js'
import type { Location, NewLocation } from '../db/schema.js'
import fixtures from './locations.json' with { type: 'json' }

/** The 16 logistics centres, with the ids existing clients already know (3 = 桃園物流中心). */
export const HUBS: readonly NewLocation[] = fixtures

/** Inserts the reference hubs or brings them up to date; ids are kept, so it can run any time. */
export async function seedHubs (db: Db): Promise<number> {
  const columns = ['id', 'title', 'city', 'address', 'lat', 'lng', 'timezone'] as const
  await upsertRows(db, 'locations', columns, HUBS.flatMap((h) => columns.map((c) => h[c])),
    'title = v.title, city = v.city, address = v.address, lat = v.lat, lng = v.lng, timezone = v.timezone')
  return HUBS.length
}

export async function listHubs (db: Db): Promise<Location[]> {
  return await db.selectFrom('locations').selectAll().orderBy('id').execute()
}
