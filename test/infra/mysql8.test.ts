import t from 'tap'
import { sql } from 'kysely'
import { createDatabase, sessionSetup } from '../../src/infra/db.js'
import { seedHubs } from '../../src/hubs/hubs.js'
import { upsertRows } from '../../src/writes/sql.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'

/** The paths that differ on MySQL 8, as far as MariaDB can run them. */
const config = testConfig('infra_mysql8')
const { db } = await freshDatabase(t, config)

t.test('the statement limit is set in each server\'s own terms, before the first statement', async (t) => {
  t.equal(sessionSetup('mysql', 3000), "SET time_zone = '+00:00', max_execution_time = 3500", 'MySQL 8: milliseconds')
  t.equal(sessionSetup('mariadb', 3000), "SET time_zone = '+00:00', max_statement_time = 3.500", 'MariaDB: seconds')
  t.equal(sessionSetup('mysql', 0), "SET time_zone = '+00:00', max_execution_time = 0", 'no limit')
  const api = createDatabase({ ...config.db, poolSize: 1, queryTimeoutMs: 3000 })
  t.teardown(async () => await api.close())
  // The very first statement on the pool's only connection already runs under both.
  const { rows } = await sql<{ limit: number, zone: string }>`SELECT @@max_statement_time AS \`limit\`, @@time_zone AS zone`.execute(api.db)
  t.equal(Number(rows[0].limit), 3.5, 'this MariaDB session stops a statement after 3.5 s')
  t.equal(rows[0].zone, '+00:00')
  const slow = await sql`SELECT SLEEP(5)`.execute(api.db).then(() => 'finished', (err: { code?: string }) => err.code)
  t.not(slow, 'finished', `a 5 s statement does not run to its end (${String(slow)}: the client's 3 s comes first, the server's 3.5 s backs it)`)
})

t.test('upserts read the new row from a derived table, not VALUES() (deprecated in MySQL 8)', async (t) => {
  await sql`UPDATE locations SET title = 'renamed' WHERE id = 3`.execute(db)
  await seedHubs(db)
  const { rows } = await sql<{ title: string }>`SELECT title FROM locations WHERE id = 3`.execute(db)
  t.equal(rows[0].title, '桃園物流中心', 'the hub seed brings a changed title back')
  await sql`CREATE TABLE counters_test (name VARCHAR(20) PRIMARY KEY, n INT NOT NULL)`.execute(db)
  await upsertRows(db, 'counters_test', ['name', 'n'], ['a', 1, 'b', 2], 'n = counters_test.n + v.n')
  await upsertRows(db, 'counters_test', ['name', 'n'], ['a', 10], 'n = counters_test.n + v.n')
  const counts = (await sql<{ name: string, n: number }>`SELECT name, n FROM counters_test ORDER BY name`.execute(db)).rows
  t.same(counts.map((c) => [c.name, c.n]), [['a', 11], ['b', 2]])
})
