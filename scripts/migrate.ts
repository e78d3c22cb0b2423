import { ensureDatabase, migrateToLatest } from '../src/db/migrator.js'
import { cliConfig, run, withDatabase } from './lib/cli.js'

/** npm run db:migrate — creates the database if it is missing, then runs every pending migration. */
run(async () => {
  const config = cliConfig()
  await ensureDatabase(config.db)
  const results = await withDatabase(config, async ({ db }) => await migrateToLatest(db))
  for (const r of results) console.log(`${r.status === 'Success' ? 'applied' : r.status}: ${r.migrationName}`)
  console.log(results.length === 0 ? `database ${config.db.database} is up to date` : `database ${config.db.database} migrated`)
})
