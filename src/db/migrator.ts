import { promises as fs } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createConnection } from 'mysql2'
import { FileMigrationProvider, Migrator, type MigrationResult } from 'kysely'
import type { DatabaseConfig } from '../config.js'
import { poolOptions, type Db } from '../infra/db.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url))

/** Runs one statement on a connection that names no database (to create or drop one). */
async function onServer (config: DatabaseConfig, statement: string): Promise<void> {
  const { connectionLimit, maxIdle, queueLimit, ...options } = poolOptions(config, false)
  const conn = createConnection(options)
  try {
    await new Promise<void>((resolve, reject) => conn.query(statement, (err) => err === null ? resolve() : reject(err)))
  } finally {
    conn.destroy()
  }
}

const quoted = (name: string): string => `\`${name.replace(/`/g, '``')}\``

export async function ensureDatabase (config: DatabaseConfig): Promise<void> {
  await onServer(config, `CREATE DATABASE IF NOT EXISTS ${quoted(config.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
}

export async function dropDatabase (config: DatabaseConfig): Promise<void> {
  await onServer(config, `DROP DATABASE IF EXISTS ${quoted(config.database)}`)
}

export function createMigrator (db: Db): Migrator {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR })
  })
}

/** Brings the schema to the newest migration; throws with the failing migration's error. */
export async function migrateToLatest (db: Db): Promise<MigrationResult[]> {
  const { error, results = [] } = await createMigrator(db).migrateToLatest()
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error')
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  return results
}
