import { sql, type Kysely } from 'kysely'

/**
 * The first migrations declare foreign keys inline, on the column. MariaDB creates those keys;
 * MySQL 8 accepts the syntax and silently creates none. This adds, as table-level constraints,
 * every key the schema means to have and the server lacks, so both servers end with the same
 * keys. On MariaDB it finds them all and changes nothing.
 */
export const FOREIGN_KEYS = [
  { table: 'orders', column: 'recipient_id', references: 'recipients', to: 'id', name: 'fk_orders_recipient' },
  { table: 'orders', column: 'location_id', references: 'locations', to: 'id', name: 'fk_orders_location' },
  { table: 'tracking_events', column: 'order_sno', references: 'orders', to: 'sno', name: 'fk_tracking_events_order' }
] as const

async function exists (db: Kysely<any>, key: typeof FOREIGN_KEYS[number]): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${key.table} AND COLUMN_NAME = ${key.column}
      AND REFERENCED_TABLE_NAME = ${key.references} AND REFERENCED_COLUMN_NAME = ${key.to}`.execute(db)
  return Number(rows[0]?.n ?? 0) > 0
}

export async function up (db: Kysely<any>): Promise<void> {
  for (const key of FOREIGN_KEYS) {
    if (await exists(db, key)) continue
    await sql`ALTER TABLE ${sql.table(key.table)} ADD CONSTRAINT ${sql.id(key.name)}
      FOREIGN KEY (${sql.id(key.column)}) REFERENCES ${sql.table(key.references)} (${sql.id(key.to)})`.execute(db)
  }
}

/** Nothing to undo: the keys were meant from the start, whichever server created them. */
export async function down (): Promise<void> {}
