import t from 'tap'
import { sql, type Transaction } from 'kysely'
import type { Database } from '../../src/db/schema.js'
import { breaksConnection, createDatabase } from '../../src/infra/db.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { Writer } from '../../src/writes/writer.js'

/**
 * A deadlock is an error of one transaction, not of its connection: the transaction that lost
 * it fails with ER_LOCK_DEADLOCK (which the writers retry), its ROLLBACK runs on the same
 * connection, and the pool goes on. A connection that is destroyed (its reply lost) leaves its
 * error as the transaction's; a statement sent on it after that names the first error, not a
 * bare "connection is in closed state".
 */
const config = testConfig('infra_lock_conflicts')
const { db: setup } = await freshDatabase(t, config)
await sql`CREATE TABLE pair (id INT PRIMARY KEY, v INT NOT NULL)`.execute(setup)
// Bounds far above the test's own waits: a blocked statement here waits for the deadlock, not a timeout.
const database = createDatabase({ ...config.db, poolSize: 3, acquireTimeoutMs: 60_000, queryTimeoutMs: 60_000 })
t.teardown(async () => await database.close())
const { db } = database

async function connectionId (trx: Transaction<Database>): Promise<number> {
  return Number((await sql<{ id: number }>`SELECT CONNECTION_ID() AS id`.execute(trx)).rows[0].id)
}

/** The server's ids of the connections the pool holds (mysql2 keeps them in `_allConnections`). */
function pooled (): number[] {
  const all = (database.pool as unknown as { _allConnections: { toArray: () => Array<{ threadId: number }> } })._allConnections
  return all.toArray().map((c) => c.threadId)
}

/**
 * Whether a statement of this database that starts with `start` has run for 200 ms or more:
 * one that takes microseconds otherwise is then waiting for a lock. (MariaDB's INNODB_TRX was
 * seen not to list such a waiting transaction at all, in about one run in three.)
 */
async function waitingFor (start: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
    WHERE DB = ${config.db.database} AND INFO LIKE ${`${start}%`} AND TIME_MS >= 200`.execute(setup)
  return Number(rows[0].n) > 0
}

t.test('the transaction that loses a deadlock fails with ER_LOCK_DEADLOCK; the other commits', async (t) => {
  await sql`DELETE FROM pair`.execute(db)
  await sql`INSERT INTO pair VALUES (1, 0), (2, 0)`.execute(db)
  let firstHolds!: () => void
  const firstHolding = new Promise<void>((resolve) => { firstHolds = resolve })
  let secondHolds!: () => void
  const secondHolding = new Promise<void>((resolve) => { secondHolds = resolve })

  // One takes row 1 then wants row 2; the other takes row 2, waits until the first is blocked on
  // it, then wants row 1: a cycle, which InnoDB breaks by rolling one of them back.
  const connections: Record<string, number> = {}
  const first = db.transaction().execute(async (trx) => {
    connections.first = await connectionId(trx)
    await sql`UPDATE pair SET v = 1 WHERE id = 1`.execute(trx)
    firstHolds()
    await secondHolding
    await sql`UPDATE pair SET v = 1 WHERE id = 2`.execute(trx)
    return 'first'
  })
  const second = db.transaction().execute(async (trx) => {
    await firstHolding
    connections.second = await connectionId(trx)
    await sql`UPDATE pair SET v = 2 WHERE id = 2`.execute(trx)
    secondHolds()
    t.ok(await eventually(async () => await waitingFor('UPDATE pair SET v = 1 WHERE id = 2'), 30_000), 'the first waits for the second')
    await sql`UPDATE pair SET v = 2 WHERE id = 1`.execute(trx)
    return 'second'
  })
  // Either one failing early frees the other, which then fails its checks instead of waiting for ever.
  first.finally(firstHolds).catch(() => {})
  second.finally(secondHolds).catch(() => {})
  const outcomes = await Promise.allSettled([first, second])
  const failed = outcomes.filter((o) => o.status === 'rejected')
  const committed = outcomes.filter((o) => o.status === 'fulfilled')
  t.equal(failed.length, 1, 'one transaction lost')
  t.equal(committed.length, 1, 'the other committed')
  const reason = (failed[0] as PromiseRejectedResult | undefined)?.reason as { code?: string, message?: string } | undefined
  t.equal(reason?.code, 'ER_LOCK_DEADLOCK', `the loser's error is the deadlock (${reason?.message ?? ''})`)
  const loser = outcomes[0].status === 'rejected' ? connections.first : connections.second
  t.ok(pooled().includes(loser), `and its connection (${loser}) is still in the pool (${pooled().join(', ')})`)

  const winner = (committed[0] as PromiseFulfilledResult<string>).value === 'first' ? 1 : 2
  const { rows } = await sql<{ id: number, v: number }>`SELECT id, v FROM pair ORDER BY id`.execute(db)
  t.same(rows.map((r) => r.v), [winner, winner], 'only the winner\'s writes are there')
})

t.test('scans that lose a deadlock are written again and accepted', async (t) => {
  const a = (await insertKnownOrder(setup)).sno
  const b = (await insertKnownOrder(setup)).sno
  await sql`DELETE FROM pair`.execute(db)
  await sql`INSERT INTO pair VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0)`.execute(db)
  const writer = new Writer(db, { hubExists: async () => true })
  const at = new Date('2026-01-01T00:00:00Z')

  // Another transaction holds parcel b; it has written rows (so InnoDB, which rolls back the
  // transaction that has done less, picks the scans) and will want parcel a, which the scans lock
  // first. Once the scans wait for b, it asks for a: a cycle. The scans lose it and run again,
  // waiting for the other transaction's commit, and are written then.
  const other = await database.db.startTransaction().execute()
  try {
    await sql`UPDATE pair SET v = v + 1`.execute(other)
    await sql`SELECT sno FROM orders WHERE sno = ${b} FOR UPDATE`.execute(other)
    const scans = writer.applyEvents([
      { event_id: 'deadlock-a', sno: a, status: 'Exception', location_id: 2, occurred_at: at },
      { event_id: 'deadlock-b', sno: b, status: 'Exception', location_id: 2, occurred_at: at }
    ])
    scans.catch(() => {})
    t.ok(await eventually(async () => await waitingFor('SELECT sno, status, location_id, status_at, last_event_at, change_seq FROM orders'), 30_000), 'the scans wait for parcel b')
    const took = await sql`SELECT sno FROM orders WHERE sno = ${a} FOR UPDATE`.execute(other).then(() => 'taken', (err: Error) => err.message)
    t.equal(took, 'taken', 'the other transaction, which had written more, took parcel a')
    await other.commit().execute()
    const results = await scans
    t.same(results.map((r) => r.result), ['accepted', 'accepted'], 'both scans accepted after the retry')
    const stored = Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM tracking_events WHERE event_id LIKE 'deadlock-%'`.execute(setup)).rows[0].n)
    t.equal(stored, 2, 'each stored once')
  } finally {
    await other.rollback().execute().catch(() => {})
  }
})

t.test('a statement whose reply never comes: its own error comes out of the transaction', async (t) => {
  const proxy = await TcpProxy.start(t, config.db.port)
  const url = new URL(config.db.url)
  url.port = String(proxy.port)
  const viaProxy = createDatabase({ ...testConfig('infra_lock_conflicts', { DATABASE_URL: url.toString() }).db, queryTimeoutMs: 3000, acquireTimeoutMs: 60_000 })
  t.teardown(async () => await viaProxy.close())

  const timedOut = await viaProxy.db.transaction().execute(async (trx) => {
    await sql`SELECT 1`.execute(trx)
    proxy.blackhole()
    await sql`UPDATE pair SET v = 4 WHERE id = 1`.execute(trx)
  }).then(() => undefined, (err: unknown) => err as Error & { code?: string })
  t.equal(timedOut?.code, 'PROTOCOL_SEQUENCE_TIMEOUT', `the timeout, not the ROLLBACK after it (${timedOut?.message ?? 'no error'})`)
  t.equal(breaksConnection(timedOut), true, 'a lost reply destroys the connection')

  await proxy.restore()
  let first: (Error & { code?: string }) | undefined
  const next = await viaProxy.db.transaction().execute(async (trx) => {
    await sql`SELECT 1`.execute(trx)
    proxy.blackhole()
    await sql`UPDATE pair SET v = 4 WHERE id = 1`.execute(trx).catch((err: Error) => { first = err })
    await sql`UPDATE pair SET v = 5 WHERE id = 2`.execute(trx)
  }).then(() => undefined, (err: unknown) => err as Error & { code?: string })
  t.equal(first?.code, 'PROTOCOL_SEQUENCE_TIMEOUT', 'the statement itself times out')
  t.match(next?.message, /closed after an earlier error: PROTOCOL_SEQUENCE_TIMEOUT/, 'a statement after it names the first error')
  t.equal(next?.code, 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR', 'which counts as the database unavailable')
  t.equal((next?.cause as { code?: string } | undefined)?.code, 'PROTOCOL_SEQUENCE_TIMEOUT', 'and has it as its cause')
})
