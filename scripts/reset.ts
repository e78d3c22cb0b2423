import { parseArgs } from 'node:util'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../src/db/migrator.js'
import { seedHubs } from '../src/hubs/hubs.js'
import { cliConfig, run, withDatabase } from './lib/cli.js'

/** npm run db:reset -- --confirm — drops the database, recreates it and loads the hubs. */
run(async () => {
  const { values } = parseArgs({ options: { confirm: { type: 'boolean', default: false }, production: { type: 'boolean', default: false } } })
  const config = cliConfig()
  if (!values.confirm) {
    console.error(`Refusing to drop database "${config.db.database}" on ${config.db.host}: run again with --confirm (npm run db:reset -- --confirm).`)
    process.exit(2)
  }
  if (config.isProduction && !values.production) {
    console.error('NODE_ENV=production: add --production as well if you really mean to wipe this database.')
    process.exit(2)
  }
  await dropDatabase(config.db)
  await ensureDatabase(config.db)
  await withDatabase(config, async ({ db }) => {
    await migrateToLatest(db)
    await seedHubs(db)
  })
  console.log(`database ${config.db.database} dropped, recreated, migrated and loaded with hubs`)
})
