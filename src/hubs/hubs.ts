import { sql } from 'kysely'
import type { Db } from '../infra/db.js'
import type { Location, NewLocation } from '../db/schema.js'
import fixtures from './locations.json' with { type: 'json' }

/** The 16 logistics centres, with the ids existing clients already know (3 = 桃園物流中心). */
export const HUBS: readonly NewLocation[] = fixtures

/** Inserts the reference hubs or brings them up to date; ids are kept, so it can run any time. */
export async function seedHubs (db: Db): Promise<number> {
  await db.insertInto('locations')
    .values(HUBS.map((h) => ({ id: h.id, title: h.title, city: h.city, address: h.address, lat: h.lat, lng: h.lng, timezone: h.timezone })))
    .onDuplicateKeyUpdate({
      title: sql`VALUES(title)`,
      city: sql`VALUES(city)`,
      address: sql`VALUES(address)`,
      lat: sql`VALUES(lat)`,
      lng: sql`VALUES(lng)`,
      timezone: sql`VALUES(timezone)`
    })
    .execute()
  return HUBS.length
}

export async function listHubs (db: Db): Promise<Location[]> {
  return await db.selectFrom('locations').selectAll().orderBy('id').execute()
}
