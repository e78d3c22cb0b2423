import { sql, type Kysely } from 'kysely'

/**
 * Webhooks: the endpoints, one delivery per (endpoint, change) made from the change log, and
 * every attempt of every delivery (what the admin sees, and what a replay starts again).
 */
export async function up (db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS webhooks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    url VARCHAR(2048) NOT NULL,
    events VARCHAR(255) NOT NULL,
    secret VARCHAR(100) NOT NULL,
    status ENUM('active', 'disabled') NOT NULL DEFAULT 'active',
    disabled_reason VARCHAR(255) NULL,
    start_change_id BIGINT UNSIGNED NOT NULL,
    failing_since DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webhook_id BIGINT UNSIGNED NOT NULL,
    change_id BIGINT UNSIGNED NOT NULL,
    sno BIGINT UNSIGNED NOT NULL,
    seq INT UNSIGNED NOT NULL,
    status ENUM('pending', 'delivered', 'failed') NOT NULL DEFAULT 'pending',
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    last_status_code SMALLINT UNSIGNED NULL,
    last_error VARCHAR(255) NULL,
    delivered_at DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_webhook_deliveries_change (webhook_id, change_id),
    KEY idx_webhook_deliveries_due (status, next_attempt_at),
    KEY idx_webhook_deliveries_parcel (webhook_id, sno, status, seq),
    CONSTRAINT fk_webhook_deliveries_webhook FOREIGN KEY (webhook_id) REFERENCES webhooks (id) ON DELETE CASCADE
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS webhook_attempts (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    delivery_id BIGINT UNSIGNED NOT NULL,
    attempted_at DATETIME(3) NOT NULL,
    status_code SMALLINT UNSIGNED NULL,
    error VARCHAR(255) NULL,
    duration_ms INT UNSIGNED NOT NULL,
    KEY idx_webhook_attempts_delivery (delivery_id, id),
    CONSTRAINT fk_webhook_attempts_delivery FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE IF EXISTS webhook_attempts`.execute(db)
  await sql`DROP TABLE IF EXISTS webhook_deliveries`.execute(db)
  await sql`DROP TABLE IF EXISTS webhooks`.execute(db)
}
