import { sql, type Kysely } from 'kysely'

const STATUS = sql`enum('Created','Package Received','In Transit','Out for Delivery','Delivery Attempted','Delivered','Returned to Sender','Exception')`

export async function up (db: Kysely<any>): Promise<void> {
  // Clustered by (order_sno, occurred_at, id): one order's whole timeline is one range read of
  // adjacent rows, already in time order.
  await db.schema
    .createTable('tracking_events')
    .addColumn('id', 'bigint', (col) => col.unsigned().notNull().autoIncrement())
    .addColumn('order_sno', 'bigint', (col) => col.unsigned().notNull().references('orders.sno'))
    .addColumn('status', STATUS, (col) => col.notNull())
    .addColumn('location_id', 'integer', (col) => col.unsigned().notNull().references('locations.id'))
    .addColumn('occurred_at', sql`datetime(3)`, (col) => col.notNull())
    .addColumn('created_at', sql`datetime(3)`, (col) => col.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`))
    .addPrimaryKeyConstraint('pk_tracking_events', ['order_sno', 'occurred_at', 'id'])
    .addUniqueConstraint('uq_tracking_events_id', ['id'])
    .modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('tracking_events').execute()
}
