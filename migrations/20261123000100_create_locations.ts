import { sql, type Kysely } from 'kysely'

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('locations')
    .addColumn('id', 'integer', (col) => col.unsigned().primaryKey().autoIncrement())
    .addColumn('title', 'varchar(100)', (col) => col.notNull())
    .addColumn('city', 'varchar(50)', (col) => col.notNull())
    .addColumn('address', 'varchar(255)', (col) => col.notNull())
    .addColumn('lat', 'decimal(9, 6)', (col) => col.notNull())
    .addColumn('lng', 'decimal(9, 6)', (col) => col.notNull())
    .addColumn('timezone', 'varchar(64)', (col) => col.notNull().defaultTo('Asia/Taipei'))
    .addColumn('created_at', sql`datetime(3)`, (col) => col.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`))
    .addColumn('updated_at', sql`datetime(3)`, (col) => col.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`).modifyEnd(sql`ON UPDATE CURRENT_TIMESTAMP(3)`))
    .modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('locations').execute()
}
