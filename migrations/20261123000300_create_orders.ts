import { sql, type Kysely } from 'kysely'

const STATUS = sql`enum('Created','Package Received','In Transit','Out for Delivery','Delivery Attempted','Delivered','Returned to Sender','Exception')`

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('orders')
    .addColumn('sno', 'bigint', (col) => col.unsigned().primaryKey().autoIncrement())
    .addColumn('recipient_id', 'bigint', (col) => col.unsigned().notNull().references('recipients.id'))
    .addColumn('status', STATUS, (col) => col.notNull())
    .addColumn('location_id', 'integer', (col) => col.unsigned().notNull().references('locations.id'))
    .addColumn('estimated_delivery', 'date', (col) => col.notNull())
    .addColumn('created_at', sql`datetime(3)`, (col) => col.notNull())
    .addColumn('last_event_at', sql`datetime(3)`, (col) => col.notNull())
    .addColumn('updated_at', sql`datetime(3)`, (col) => col.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`).modifyEnd(sql`ON UPDATE CURRENT_TIMESTAMP(3)`))
    .modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
    .execute()

  // Reports count by current status and find the quiet ones without touching tracking_events.
  await db.schema.createIndex('idx_orders_status_last_event').on('orders').columns(['status', 'last_event_at']).execute()
  await db.schema.createIndex('idx_orders_location_status').on('orders').columns(['location_id', 'status']).execute()
  await db.schema.createIndex('idx_orders_created_at').on('orders').column('created_at').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('orders').execute()
}
