import t from 'tap'
import { sql } from 'kysely'
import { breaksConnection, createDatabase } from '../../src/infra/db.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { eventually } from '../helpers/app.js'

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

async function lockWaits (): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'`.execute(setup)
  return Number(rows[0].n)
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
  const first = db.transaction().execute(async (trx) => {
    await sql`UPDATE pair SET v = 1 WHERE id = 1`.execute(trx)
    firstHolds()
    await secondHolding
    await sql`UPDATE pair SET v = 1 WHERE id = 2`.execute(trx)
    return 'first'
  })
  const second = db.transaction().execute(async (trx) => {
    await firstHolding
    await sql`UPDATE pair SET v = 2 WHERE id = 2`.execute(trx)
    secondHolds()
    t.ok(await eventually(async () => await lockWaits() > 0, 30_000), 'the first waits for the second')
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
  t.equal(breaksConnection(reason), false, 'and its connection is kept')

  const winner = (committed[0] as PromiseFulfilledResult<string>).value === 'first' ? 1 : 2
  const { rows } = await sql<{ id: number, v: number }>`SELECT id, v FROM pair ORDER BY id`.execute(db)
  t.same(rows.map((r) => r.v), [winner, winner], 'only the winner\'s writes are there')
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
