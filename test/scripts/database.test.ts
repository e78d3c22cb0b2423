import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { sql } from 'kysely'
import { testConfig } from '../helpers/config.js'
import { createDatabase } from '../../src/infra/db.js'
import { createMigrator, dropDatabase } from '../../src/db/migrator.js'

const exec = promisify(execFile)
const config = testConfig('scripts_database')
const env = { ...process.env, DATABASE_URL: config.db.url, NODE_ENV: 'test', LOG_LEVEL: 'silent' }

async function npmRun (script: string, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await exec('npm', ['run', '--silent', script, '--', ...args], { env, timeout: 120_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

await dropDatabase(config.db)
const handle = createDatabase(config.db)
t.teardown(async () => {
  await handle.close()
  await dropDatabase(config.db)
})

t.test('db:migrate creates the missing database and is idempotent', async (t) => {
  const first = await npmRun('db:migrate')
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /applied: 20261123000400_create_tracking_events/)
  const second = await npmRun('db:migrate')
  t.match(second.stdout, /up to date/)
  const { rows } = await sql<{ cs: string }>`SELECT DEFAULT_CHARACTER_SET_NAME AS cs FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${config.db.database}`.execute(handle.db)
  t.equal(rows[0].cs, 'utf8mb4')
  const { rows: columns } = await sql<{ name: string, type: string }>`
    SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = ${config.db.database} AND TABLE_NAME = 'tracking_events' AND COLUMN_NAME = 'occurred_at'`.execute(handle.db)
  t.equal(columns[0].type, 'datetime(3)', 'millisecond precision')
})

t.test('the event-table migration goes down and up again, leaving the table as lean as before', async (t) => {
  const indexes = async (): Promise<Map<string, boolean>> => new Map((await sql<{ name: string, nonUnique: number }>`
    SELECT DISTINCT INDEX_NAME AS name, NON_UNIQUE AS nonUnique FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = ${config.db.database} AND TABLE_NAME = 'tracking_events'`.execute(handle.db)).rows.map((r) => [r.name, Number(r.nonUnique) === 0]))
  const referenced = async (): Promise<string[]> => (await sql<{ ref: string }>`
    SELECT REFERENCED_TABLE_NAME AS ref FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = ${config.db.database} AND TABLE_NAME = 'tracking_events' AND REFERENCED_TABLE_NAME IS NOT NULL`.execute(handle.db)).rows.map((r) => r.ref)
  const lean = async (label: string): Promise<void> => {
    const now = await indexes()
    t.same([...now.keys()].sort(), ['PRIMARY', 'idx_tracking_events_id', 'uq_tracking_events_source_id'], `${label}: the primary key, the id index and the source-id index only`)
    t.equal(now.get('uq_tracking_events_source_id'), true, `${label}: a source's event id is unique per parcel`)
    t.equal(now.get('idx_tracking_events_id'), false, `${label}: the id index is not unique`)
    t.notOk((await referenced()).includes('locations'), `${label}: no hub foreign key`)
  }
  await lean('migrated')
  const migrator = createMigrator(handle.db)
  t.equal((await migrator.migrateTo('20261123000400_create_tracking_events')).error, undefined)
  t.equal((await indexes()).get('uq_tracking_events_id'), true, 'down: the unique id index is back')
  t.ok((await referenced()).includes('locations'), 'down: the hub foreign key is back')
  t.equal((await migrator.migrateToLatest()).error, undefined)
  await lean('up again')
})

t.test('a foreign key the server lacks (MySQL 8 ignores inline ones) is added as a table constraint', async (t) => {
  const { up, FOREIGN_KEYS } = await import('../../migrations/20261124000600_table_level_foreign_keys.js')
  const keys = async (): Promise<string[]> => (await sql<{ key: string }>`
    SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, '->', REFERENCED_TABLE_NAME) AS \`key\` FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = ${config.db.database} AND TABLE_NAME IN ('orders', 'tracking_events') AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY \`key\``.execute(handle.db)).rows.map((r) => r.key)
  const meant = FOREIGN_KEYS.map((k) => `${k.table}.${k.column}->${k.references}`).sort()
  t.same(await keys(), meant, 'all present after the migrations')
  // As on MySQL 8: the key from the inline declaration is not there.
  const { rows } = await sql<{ name: string }>`
    SELECT CONSTRAINT_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = ${config.db.database} AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'recipient_id' AND REFERENCED_TABLE_NAME IS NOT NULL`.execute(handle.db)
  await sql`ALTER TABLE orders DROP FOREIGN KEY ${sql.id(rows[0].name)}`.execute(handle.db)
  t.notOk((await keys()).includes('orders.recipient_id->recipients'))
  await up(handle.db)
  t.same(await keys(), meant, 'added back')
  await up(handle.db)
  t.same(await keys(), meant, 'and running it again changes nothing')
})

t.test('db:seed loads the 16 hubs with their ids, any number of times', async (t) => {
  for (let i = 0; i < 2; i++) {
    const run = await npmRun('db:seed')
    t.equal(run.code, 0, run.stderr)
  }
  const hubs = await handle.db.selectFrom('locations').select(['id', 'title']).orderBy('id').execute()
  t.equal(hubs.length, 16)
  t.same(hubs.find((h) => h.id === 3), { id: 3, title: '桃園物流中心' })
})

t.test('db:seed --orders N bulk-loads orders with timelines and shows progress', async (t) => {
  const run = await npmRun('db:seed', '--orders', '5000', '--batch', '1000')
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, /orders \[#+\] 5000\/5000 100%/, 'progress bar')
  t.match(run.stdout, /orders: 5000 with \d+ events in [\d.]+ s \(\d+ orders\/s\)/)
  const { rows } = await sql<{ orders: number, events: number, mismatched: number }>`
    SELECT (SELECT COUNT(*) FROM orders) AS orders,
           (SELECT COUNT(*) FROM tracking_events) AS events,
           (SELECT COUNT(*) FROM orders o JOIN tracking_events e ON e.order_sno = o.sno
              AND e.occurred_at = (SELECT MAX(occurred_at) FROM tracking_events x WHERE x.order_sno = o.sno)
            WHERE e.status <> o.status OR e.location_id <> o.location_id OR e.occurred_at <> o.last_event_at) AS mismatched`.execute(handle.db)
  t.equal(Number(rows[0].orders), 5000)
  t.ok(Number(rows[0].events) >= 5000 * 3, 'at least three events an order')
  t.equal(Number(rows[0].mismatched), 0, 'every order row agrees with its newest event')
  const bad = await npmRun('db:seed', '--orders', 'lots')
  t.not(bad.code, 0)
  t.match(bad.stderr, /--orders must be a whole number/)
})

t.test('db:reset refuses without --confirm, and resets with it', async (t) => {
  const refused = await npmRun('db:reset')
  t.not(refused.code, 0)
  t.match(refused.stderr, new RegExp(`Refusing to drop database "${config.db.database}".*--confirm`))
  t.equal(Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders`.execute(handle.db)).rows[0].n), 5000, 'nothing dropped')
  const done = await npmRun('db:reset', '--confirm')
  t.equal(done.code, 0, done.stderr)
  const fresh = createDatabase(config.db)
  t.teardown(async () => await fresh.close())
  t.equal(Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders`.execute(fresh.db)).rows[0].n), 0)
  t.equal(Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM locations`.execute(fresh.db)).rows[0].n), 16, 'hubs loaded again')
})
