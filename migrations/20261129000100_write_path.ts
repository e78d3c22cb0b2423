import { sql, type Kysely } from 'kysely'

/**
 * The write path: every accepted event carries the id its source gave it (unique per parcel, so
 * a redelivery is recognised), the order row keeps a per-order change sequence and the time of
 * the event that set its status (for the monotonic rule), and every committed change is appended
 * to `change_log` in the same transaction. `change_relay` remembers how far the relay has
 * replayed the log into the cache. Each step checks the schema first, so a run cut short can be
 * run again.
 */
async function columns (db: Kysely<any>, table: string): Promise<Set<string>> {
  const { rows } = await sql<{ name: string }>`
    SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table}`.execute(db)
  return new Set(rows.map((r) => r.name))
}

async function indexExists (db: Kysely<any>, table: string, index: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table} AND INDEX_NAME = ${index}`.execute(db)
  return Number(rows[0]?.n ?? 0) > 0
}

export async function up (db: Kysely<any>): Promise<void> {
  const orderColumns = await columns(db, 'orders')
  if (!orderColumns.has('change_seq')) {
    await sql`ALTER TABLE orders
      ADD COLUMN change_seq INT UNSIGNED NOT NULL DEFAULT 0,
      ADD COLUMN status_at DATETIME(3) NULL,
      ADD COLUMN sender_location_id INT UNSIGNED NULL,
      ADD COLUMN receiver_location_id INT UNSIGNED NULL,
      ADD COLUMN reference VARCHAR(100) NULL`.execute(db)
  }
  await sql`UPDATE orders SET status_at = last_event_at WHERE status_at IS NULL`.execute(db)
  await sql`ALTER TABLE orders MODIFY status_at DATETIME(3) NOT NULL`.execute(db)

  const eventColumns = await columns(db, 'tracking_events')
  if (!eventColumns.has('event_id')) {
    await sql`ALTER TABLE tracking_events
      ADD COLUMN event_id VARCHAR(64) NULL,
      ADD COLUMN vehicle_id VARCHAR(32) NULL`.execute(db)
  }
  if (!await indexExists(db, 'tracking_events', 'uq_tracking_events_source_id')) {
    await sql`ALTER TABLE tracking_events ADD UNIQUE INDEX uq_tracking_events_source_id (order_sno, event_id)`.execute(db)
  }

  await sql`CREATE TABLE IF NOT EXISTS change_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sno BIGINT UNSIGNED NOT NULL,
    seq INT UNSIGNED NOT NULL,
    kind VARCHAR(32) NOT NULL,
    payload TEXT NOT NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_change_log_sno_seq (sno, seq)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS change_relay (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    last_id BIGINT UNSIGNED NOT NULL,
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  // Idempotency-Key answers (src/intake/idempotency.ts): keys are case-sensitive (ascii_bin: 'abc'
  // and 'ABC' are different keys); `owner` marks the request that holds a pending key.
  await sql`CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    owner CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
    status_code SMALLINT UNSIGNED NULL,
    response MEDIUMTEXT NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (scope, idem_key),
    KEY idx_idempotency_keys_created (created_at)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)
  // A table made by an earlier draft of this migration: its rows are transient, reshape it.
  if (!(await columns(db, 'idempotency_keys')).has('owner')) {
    await sql`DELETE FROM idempotency_keys`.execute(db)
    await sql`ALTER TABLE idempotency_keys
      MODIFY scope VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      MODIFY idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      MODIFY request_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      ADD COLUMN owner CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER request_hash`.execute(db)
  }
}

export async function down (db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS idempotency_keys`.execute(db)
  await sql`DROP TABLE IF EXISTS change_relay`.execute(db)
  await sql`DROP TABLE IF EXISTS change_log`.execute(db)
  await sql`ALTER TABLE tracking_events DROP INDEX uq_tracking_events_source_id, DROP COLUMN event_id, DROP COLUMN vehicle_id`.execute(db)
  await sql`ALTER TABLE orders DROP COLUMN change_seq, DROP COLUMN status_at, DROP COLUMN sender_location_id,
    DROP COLUMN receiver_location_id, DROP COLUMN reference`.execute(db)
}
