import { CompiledQuery, sql } from 'kysely'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Db } from '../infra/db.js'

export interface Change {
  id: number
  sno: number
  /** The order's change sequence. */
  seq: number
  kind: string
  /** JSON text, as stored. */
  payload: string
  created_at: Date
}

export interface ChangeRelayOptions {
  /** The relay's name: its lock and its saved position. */
  name: string
  /**
   * true (default): one relay of this name works at a time, from its saved position (every
   * change is delivered at least once, across restarts). false: every process follows the log
   * for itself from the newest change on (live streams), with nothing saved.
   */
  exclusive?: boolean
  /** Receives the changes of one poll; false (or a throw) means "not delivered, send again". */
  deliver: (changes: readonly Change[]) => Promise<boolean>
  intervalMs?: number
  /** How long a missing id is waited for (a transaction still open) before it is taken for a rollback. */
  gapTimeoutMs?: number
  batchSize?: number
}

interface Gap {
  from: number
  to: number
  since: number
}

const MAX_GAPS = 200
const COLUMNS = 'id, sno, seq, kind, payload, created_at'

/**
 * Replays the change log to whatever must follow a commit (the cache invalidation), so that a
 * crash between a commit and its invalidation leaves nothing stale for longer than a poll.
 * Every writer process runs one; a MySQL named lock (GET_LOCK, freed when its connection ends)
 * lets only one of them work at a time. It reads the log in id order from its saved position;
 * ids are handed out before commit, so an id it has not seen yet while later ones are visible
 * (a transaction still open) is watched for `gapTimeoutMs` before it is given up as rolled back.
 * Delivery is at least once: a change may be delivered twice, never skipped.
 */
export class ChangeRelay {
  private timer: NodeJS.Timeout | undefined
  private leader = false
  private highest = 0
  private saved = 0
  private gaps: Gap[] = []
  private running: Promise<void> | undefined
  private stopped = false
  private step = 1
  private failures = 0
  private following = false

  constructor (private readonly db: Db, private readonly logger: Logger, private readonly options: ChangeRelayOptions) {}

  get isLeader (): boolean {
    return this.leader
  }

  /** Ids up to here are delivered. */
  get position (): number {
    return this.gaps.length > 0 ? Math.min(...this.gaps.map((g) => g.from)) - 1 : this.highest
  }

  start (): void {
    const interval = this.options.intervalMs ?? 250
    const loop = (): void => {
      if (this.stopped) return
      this.timer = setTimeout(() => {
        this.tick().catch(() => {}).finally(loop)
      }, interval)
      this.timer.unref()
    }
    loop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** One poll: take the lead if free, then deliver what is new. */
  async tick (): Promise<void> {
    this.running ??= this.poll().finally(() => { this.running = undefined })
    await this.running
  }

  private async poll (): Promise<void> {
    try {
      if (!await this.lead()) return
      const fresh = await this.read(
        `SELECT ${COLUMNS} FROM change_log WHERE id > ? ORDER BY id LIMIT ${this.options.batchSize ?? 5000}`, [this.highest])
      const late = this.gaps.length === 0
        ? []
        : await this.read(`SELECT ${COLUMNS} FROM change_log WHERE ${this.gaps.slice(0, MAX_GAPS).map(() => '(id BETWEEN ? AND ?)').join(' OR ')}`,
          this.gaps.slice(0, MAX_GAPS).flatMap((g) => [g.from, g.to]))
      const changes = [...late, ...fresh]
      if (changes.length > 0 && !await this.options.deliver(changes)) return
      this.advance(fresh, late)
      if (this.exclusive) await this.save()
      if (this.failures > 0) this.logger.info({ relay: this.options.name, failedPolls: this.failures }, 'change relay working again')
      this.failures = 0
    } catch (err) {
      // Once when it starts failing, then a line when it works again (MySQL away for a while).
      if (this.failures++ === 0) this.logger.warn({ err, relay: this.options.name }, 'change relay cannot read the change log; retrying')
      this.leader = false
    }
  }

  private get exclusive (): boolean {
    return this.options.exclusive ?? true
  }

  private async lead (): Promise<boolean> {
    if (!this.exclusive) {
      // Once: from the newest change on. After a failed poll it goes on from where it was.
      if (!this.following) {
        const { rows } = await sql<{ last: number | null }>`SELECT MAX(id) AS last FROM change_log`.execute(this.db)
        this.highest = Number(rows[0]?.last ?? 0)
        this.following = true
      }
      return true
    }
    const name = `${this.options.name}:${await this.databaseName()}`
    const { rows } = await sql<{ leader: number | null }>`SELECT IF(IS_USED_LOCK(${name}) = CONNECTION_ID(), 1, GET_LOCK(${name}, 0)) AS leader`.execute(this.db)
    const leader = Number(rows[0]?.leader) === 1
    if (leader && !this.leader) await this.resume()
    this.leader = leader
    return leader
  }

  private database: string | undefined
  private async databaseName (): Promise<string> {
    this.database ??= (await sql<{ name: string }>`SELECT DATABASE() AS name`.execute(this.db)).rows[0].name
    return this.database
  }

  /** On taking the lead: start from the saved position (everything after it is delivered again). */
  private async resume (): Promise<void> {
    const { rows } = await sql<{ step: number, last: number | null }>`
      SELECT @@auto_increment_increment AS step, (SELECT last_id FROM change_relay WHERE name = ${this.options.name}) AS last`.execute(this.db)
    this.step = Math.max(1, Number(rows[0]?.step ?? 1))
    this.highest = Number(rows[0]?.last ?? 0)
    this.saved = this.highest
    this.gaps = []
    this.logger.info({ relay: this.options.name, from: this.highest }, 'change relay leading')
  }

  private async read (statement: string, parameters: unknown[]): Promise<Change[]> {
    const { rows } = await this.db.executeQuery<Change>(CompiledQuery.raw(statement, parameters))
    return rows.map((r) => ({ ...r, id: Number(r.id), sno: Number(r.sno) }))
  }

  private advance (fresh: readonly Change[], late: readonly Change[]): void {
    const now = Date.now()
    // Ids seen late fill (and split) the gaps they fall in.
    for (const { id } of late) {
      const i = this.gaps.findIndex((g) => id >= g.from && id <= g.to)
      if (i < 0) continue
      const gap = this.gaps[i]
      const parts = [{ ...gap, to: id - this.step }, { ...gap, from: id + this.step }].filter((g) => g.from <= g.to)
      this.gaps.splice(i, 1, ...parts)
    }
    let previous = this.highest
    for (const { id } of fresh) {
      if (previous > 0 && id > previous + this.step) this.gaps.push({ from: previous + this.step, to: id - this.step, since: now })
      previous = id
    }
    this.highest = previous
    const timeout = this.options.gapTimeoutMs ?? 60_000
    const expired = this.gaps.filter((g) => now - g.since > timeout)
    if (expired.length > 0) this.gaps = this.gaps.filter((g) => now - g.since <= timeout)
    if (this.gaps.length > MAX_GAPS * 5) {
      this.logger.warn({ relay: this.options.name, gaps: this.gaps.length }, 'change relay: too many open gaps; giving up the oldest')
      this.gaps = this.gaps.slice(-MAX_GAPS * 5)
    }
  }

  private async save (): Promise<void> {
    const position = this.position
    if (position <= this.saved) return
    await sql`INSERT INTO change_relay (name, last_id) VALUES (${this.options.name}, ${position})
      ON DUPLICATE KEY UPDATE last_id = GREATEST(last_id, ${position})`.execute(this.db)
    this.saved = position
  }
}
