import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { createDatabase, type DatabaseHandle } from '../../src/infra/db.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { seedHubs } from '../../src/hubs/hubs.js'

/** Drops and recreates the file's database, migrates it and loads the hubs; dropped again at the end. */
export async function freshDatabase (t: Test, config: Config): Promise<DatabaseHandle> {
  await dropDatabase(config.db)
  await ensureDatabase(config.db)
  const handle = createDatabase({ ...config.db, queryTimeoutMs: 0 })
  await migrateToLatest(handle.db)
  await seedHubs(handle.db)
  t.teardown(async () => {
    await handle.close()
    await dropDatabase(config.db)
  })
  return handle
}
