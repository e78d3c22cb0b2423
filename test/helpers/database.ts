import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { createDatabase, type DatabaseHandle } from '../../src/infra/db.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { seedHubs } from '../../src/hubs/hubs.js'

/**
 * How long the test's own connections wait to connect and for a pooled connection: the API's 2 s
 * bounds are for serving requests, and a test's setup on a busy machine (two test files and
 * their servers on two cores) once ran past them before its first test.
 */
const SETUP_WAIT_MS = 30_000

/** Drops and recreates the file's database, migrates it and loads the hubs; dropped again at the end. */
export async function freshDatabase (t: Test, config: Config): Promise<DatabaseHandle> {
  const setup = { ...config.db, connectTimeoutMs: SETUP_WAIT_MS, acquireTimeoutMs: SETUP_WAIT_MS }
  await dropDatabase(setup)
  await ensureDatabase(setup)
  const handle = createDatabase({ ...setup, queryTimeoutMs: 0 })
  await migrateToLatest(handle.db)
  await seedHubs(handle.db)
  t.teardown(async () => {
    await handle.close()
    await dropDatabase(setup)
  })
  return handle
}
