import { sql, type Kysely } from 'kysely'

/**
 * The fleet: vehicles (with their newest position on the row, so /fleet reads no track), the
 * manifest (a parcel is on at most one vehicle: the parcel is the key), the track kept for
 * playback (one row per vehicle and fix time, so a resent fix is stored once), each hub's
 * geofence radius where it differs from GEOFENCE_RADIUS_M, the geofence state of every vehicle
 * and hub that is not "outside" (no row: outside), and the counts of refused fixes.
 * Every statement can be run again (a run cut short is simply repeated).
 */
export async function up (db: Kysely<any>): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS vehicles (
    id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    capacity INT UNSIGNED NOT NULL,
    home_location_id INT UNSIGNED NOT NULL,
    lat DOUBLE NULL,
    lng DOUBLE NULL,
    speed FLOAT NULL,
    heading FLOAT NULL,
    accuracy FLOAT NULL,
    fix_at DATETIME(3) NULL,
    seen_at DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS vehicle_parcels (
    sno BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    vehicle_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    location_id INT UNSIGNED NOT NULL,
    loaded_at DATETIME(3) NOT NULL,
    KEY idx_vehicle_parcels_vehicle (vehicle_id, sno)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS vehicle_positions (
    vehicle_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    fix_at DATETIME(3) NOT NULL,
    lat DOUBLE NOT NULL,
    lng DOUBLE NOT NULL,
    speed FLOAT NULL,
    heading FLOAT NULL,
    accuracy FLOAT NULL,
    received_at DATETIME(3) NOT NULL,
    PRIMARY KEY (vehicle_id, fix_at),
    KEY idx_vehicle_positions_fix_at (fix_at)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS hub_geofences (
    location_id INT UNSIGNED NOT NULL PRIMARY KEY,
    radius_m INT UNSIGNED NOT NULL
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  // 'dwelling': inside the radius since \`since\`, not yet long enough; 'inside': arrived, the
  // visit that began at \`since\` (its arrival and departure event ids derive from it).
  await sql`CREATE TABLE IF NOT EXISTS geofence_states (
    vehicle_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    location_id INT UNSIGNED NOT NULL,
    state ENUM('dwelling', 'inside') NOT NULL,
    since DATETIME(3) NOT NULL,
    PRIMARY KEY (vehicle_id, location_id)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)

  await sql`CREATE TABLE IF NOT EXISTS fleet_counters (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    count BIGINT UNSIGNED NOT NULL DEFAULT 0
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const table of ['fleet_counters', 'geofence_states', 'hub_geofences', 'vehicle_positions', 'vehicle_parcels', 'vehicles']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db)
  }
}
