import t from 'tap'
import { sql } from 'kysely'
import { createDatabase } from '../../src/infra/db.js'
import { createLogger } from '../../src/logger.js'
import { ChangeRelay, type Change } from '../../src/writes/change-relay.js'
import { eventually } from '../helpers/app.js'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'

const config = testConfig('writes_change_relay')
const { db } = await freshDatabase(t, config)
const logger = createLogger('silent')

function relayOn (name: string, deliver: (changes: readonly Change[]) => Promise<boolean>): { relay: ChangeRelay, close: () => Promise<void> } {
  const own = createDatabase({ ...config.db, poolSize: 1 })
  const relay = new ChangeRelay(own.db, logger, { name, deliver, gapTimeoutMs: 60_000 })
  return { relay, close: async () => { await relay.stop(); await own.close() } }
}

const change = async (sno: number): Promise<void> => {
  await sql`INSERT INTO change_log (sno, seq, kind, payload) VALUES (${sno}, 1, 'test', '{}')`.execute(db)
}

t.test('a change whose transaction commits after later ones is still delivered', async (t) => {
  const delivered: number[] = []
  const { relay, close } = relayOn('gap', async (changes) => { delivered.push(...changes.map((c) => c.sno)); return true })
  t.teardown(close)
  await change(1)
  await relay.tick()
  t.same(delivered, [1])

  // A transaction takes the next id and stays open while two later changes commit.
  const slow = createDatabase({ ...config.db, poolSize: 1 })
  t.teardown(async () => await slow.close())
  let commit!: () => void
  let inserted!: () => void
  const insertedOnce = new Promise<void>((resolve) => { inserted = resolve })
  const open = slow.db.transaction().execute(async (trx) => {
    await sql`INSERT INTO change_log (sno, seq, kind, payload) VALUES (2, 1, 'test', '{}')`.execute(trx)
    const committed = new Promise<void>((resolve) => { commit = resolve })
    inserted()
    await committed
  })
  await insertedOnce
  await change(3)
  await change(4)
  await relay.tick()
  t.same(delivered, [1, 3, 4], 'the visible ones go out')
  t.equal(relay.position, 1, 'the position waits at the open transaction')

  commit()
  await open
  await relay.tick()
  t.same(delivered, [1, 3, 4, 2], 'the late one goes out once it commits')
  t.equal(relay.position, 4)
})

t.test('a failed delivery is sent again; a new leader starts from the saved position', async (t) => {
  let failing = true
  const first: number[] = []
  const a = relayOn('takeover', async (changes) => { if (failing) return false; first.push(...changes.map((c) => c.sno)); return true })
  await a.relay.tick()
  t.ok(a.relay.isLeader, 'the first relay leads')
  const b = relayOn('takeover', async (changes) => { second.push(...changes.map((c) => c.sno)); return true })
  t.teardown(b.close)
  const second: number[] = []
  await b.relay.tick()
  t.notOk(b.relay.isLeader, 'only one relay leads')

  await change(10)
  await a.relay.tick()
  t.same(first, [], 'not delivered')
  failing = false
  await a.relay.tick()
  t.ok(first.includes(10), 'delivered on the next poll')

  await change(11)
  await a.close() // its connection ends: the lock is free
  // Once MySQL has seen that connection end, which on a busy machine can come after b's next poll.
  t.ok(await eventually(async () => { await b.relay.tick(); return b.relay.isLeader }, 30_000), 'the other relay takes over')
  t.ok(second.includes(11), 'and delivers what the first had not')
  t.notOk(second.includes(1), 'from the saved position, not from the start')
})
