import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2'
import { Kysely, MysqlDialect, type MysqlPool, type MysqlPoolConnection } from 'kysely'
import type { DatabaseConfig } from '../config.js'
import type { Database } from '../db/schema.js'

export type Db = Kysely<Database>

export interface DatabaseHandle {
  db: Db
  pool: Pool
  close: () => Promise<void>
}

/** Driver errors that mean "the database cannot answer now", as opposed to a bad statement. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ER_STATEMENT_TIMEOUT', 'ER_QUERY_TIMEOUT',
  'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_QUERY_INTERRUPTED', 'ER_CONNECTION_KILLED',
  'DB_ACQUIRE_TIMEOUT', 'DB_QUEUE_FULL'
])

export function isDatabaseUnavailable (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, errno, fatal } = err as { code?: unknown, errno?: unknown, fatal?: unknown }
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true
  // 1969: MariaDB max_statement_time exceeded; 3024: MySQL max_execution_time exceeded.
  if (errno === 1969 || errno === 3024) return true
  return fatal === true
}

/**
 * Server errors after which the connection is as good as before: the server undid the statement
 * (or the whole transaction) and said so in a complete reply. Kept, the connection can still run
 * the ROLLBACK that follows, and the caller sees the error itself (a deadlock it may retry)
 * rather than a "connection is closed" from that ROLLBACK.
 */
const CONNECTION_STAYS_USABLE = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_QUERY_INTERRUPTED', 'ER_STATEMENT_TIMEOUT', 'ER_QUERY_TIMEOUT'])

/** Whether a connection that saw `err` must be destroyed: its reply may be lost or half-read, or the server is gone. */
export function breaksConnection (err: unknown): boolean {
  if (!isDatabaseUnavailable(err)) return false
  const { code, errno, fatal } = err as { code?: unknown, errno?: unknown, fatal?: unknown }
  if (fatal === true) return true
  return !(typeof code === 'string' && CONNECTION_STAYS_USABLE.has(code)) && errno !== 1969 && errno !== 3024
}

/** Two transactions wanting each other's locks: the one rolled back may simply run again. */
export function isLockConflict (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT'
}

/**
 * Runs a transaction again when it lost a lock conflict (or when `alsoRetry` says so), up to
 * `attempts` in all; any other error, or the last attempt's, is thrown.
 */
export async function retryLockConflicts<T> (run: () => Promise<T>, options: { attempts?: number, alsoRetry?: (err: unknown) => boolean } = {}): Promise<T> {
  const { attempts = 3, alsoRetry } = options
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      if (attempt >= attempts || !(isLockConflict(err) || alsoRetry?.(err) === true)) throw err
    }
  }
}

function driverError (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

function closedAfter (cause: Error): Error {
  const code = (cause as { code?: unknown }).code
  return Object.assign(new Error(`The connection was closed after an earlier error: ${typeof code === 'string' ? `${code}: ` : ''}${cause.message}`, { cause }),
    { code: 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR', fatal: true })
}

/**
 * A mysql2 pool as Kysely sees it, with the two bounds mysql2 lacks: waiting for a free
 * connection is limited in time, and every statement has an inactivity timeout after which
 * its connection is destroyed (a connection with a lost reply can never be reused safely).
 * A connection is destroyed only for such errors (`breaksConnection`), not for a deadlock.
 */
function guardedPool (pool: Pool, config: DatabaseConfig): MysqlPool {
  const wrap = (conn: PoolConnection): MysqlPoolConnection => {
    // Why the connection was destroyed: a later statement on it fails with this as its cause
    // rather than with the driver's bare "connection is in closed state".
    let lost: Error | undefined
    return {
      query: ((sql: string, parameters: unknown[], callback?: (err: unknown, result: never) => void) => {
        if (callback === undefined) return conn.query(sql, parameters)
        if (lost !== undefined) {
          const cause = lost
          // The server ends a closed connection's transaction itself: the ROLLBACK that follows
          // the error succeeds, so the caller sees that error and not this one.
          const answer = /^rollback$/i.test(sql) ? null : closedAfter(cause)
          process.nextTick(() => callback(answer, {} as never))
          return
        }
        const options = config.queryTimeoutMs > 0 ? { sql, timeout: config.queryTimeoutMs } : { sql }
        conn.query(options, parameters, (err, result) => {
          if (err !== null && breaksConnection(err)) {
            lost = err
            conn.destroy()
          }
          callback(err, result as never)
        })
      }) as MysqlPoolConnection['query'],
      release: () => conn.release()
    }
  }

  // Each connection's session is set up before its first use (see `sessionSetup`); the
  // server's flavour, read by the first connection, is the same for the others.
  const prepared = new WeakSet<PoolConnection>()
  let flavour: 'mariadb' | 'mysql' | undefined
  // Bounded even where statements are not: a server that never answers must not hold the slot.
  const timeout = config.queryTimeoutMs > 0 ? config.queryTimeoutMs : config.acquireTimeoutMs
  const prepare = (conn: PoolConnection, settled: (err: Error | null) => void): void => {
    // Once: mysql2 may report a statement twice (its client timeout, then the server's reply).
    let reported = false
    const done = (err: Error | null): void => { if (!reported) { reported = true; settled(err) } }
    const set = (server: 'mariadb' | 'mysql'): void => {
      conn.query({ sql: sessionSetup(server, config.queryTimeoutMs), timeout }, (err) => {
        if (err === null) prepared.add(conn)
        done(err)
      })
    }
    if (flavour !== undefined) return set(flavour)
    conn.query({ sql: 'SELECT @@version AS version', timeout }, (err, rows) => {
      if (err !== null) return done(err)
      flavour = /mariadb/i.test(String((rows as Array<{ version: string }>)[0]?.version ?? '')) ? 'mariadb' : 'mysql'
      set(flavour)
    })
  }

  return {
    getConnection (callback) {
      let settled = false
      const settle = (): boolean => {
        if (settled) return false
        settled = true
        clearTimeout(timer)
        return true
      }
      const timer = setTimeout(() => {
        if (settle()) callback(driverError('DB_ACQUIRE_TIMEOUT', `No database connection within ${config.acquireTimeoutMs} ms`), undefined as never)
      }, config.acquireTimeoutMs)
      pool.getConnection((err, conn) => {
        if (err !== null) {
          const queueFull = /queue limit/i.test(err.message)
          if (settle()) callback(queueFull ? driverError('DB_QUEUE_FULL', 'Too many requests waiting for a database connection') : err, undefined as never)
          return
        }
        // Too late (the caller has its timeout): the connection goes back, set up or not.
        const handOver = (): void => { if (settle()) callback(null, wrap(conn)); else conn.release() }
        if (settled || prepared.has(conn)) return handOver()
        prepare(conn, (setupErr) => {
          if (setupErr === null) return handOver()
          conn.destroy()
          if (settle()) callback(setupErr, undefined as never)
        })
      })
    },
    end: (callback) => pool.end(callback)
  }
}

export function poolOptions (config: DatabaseConfig, withDatabase = true): PoolOptions {
  return {
    host: config.socketPath === undefined ? config.host : undefined,
    port: config.socketPath === undefined ? config.port : undefined,
    socketPath: config.socketPath,
    user: config.user,
    password: config.password,
    database: withDatabase ? config.database : undefined,
    connectionLimit: config.poolSize,
    maxIdle: config.poolSize,
    queueLimit: config.queueLimit,
    connectTimeout: config.connectTimeoutMs,
    enableKeepAlive: true,
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    dateStrings: ['DATE'],
    decimalNumbers: true,
    supportBigNumbers: true,
    bigNumberStrings: false
  }
}

/**
 * Every session runs in UTC (so that CURRENT_TIMESTAMP(3) agrees with the values the driver
 * writes) and with the server's own bound on one statement, a little above the client's
 * timeout, so that a statement the client gave up on does not go on running on the server. The
 * bound is spelled differently: MariaDB's `max_statement_time` (seconds, every statement), MySQL
 * 8's `max_execution_time` (milliseconds, SELECTs only; writes there are bounded by
 * `innodb_lock_wait_timeout` and the client's timeout, which destroys the connection).
 * One statement, run before the connection's first use.
 */
export function sessionSetup (server: 'mariadb' | 'mysql', queryTimeoutMs: number): string {
  const limitMs = queryTimeoutMs > 0 ? queryTimeoutMs + 500 : 0
  return server === 'mariadb'
    ? `SET time_zone = '+00:00', max_statement_time = ${(limitMs / 1000).toFixed(3)}`
    : `SET time_zone = '+00:00', max_execution_time = ${limitMs}`
}

export function createDatabase (config: DatabaseConfig): DatabaseHandle {
  const pool = createPool(poolOptions(config))
  const db = new Kysely<Database>({ dialect: new MysqlDialect({ pool: guardedPool(pool, config) }) })
  let closed: Promise<void> | undefined
  return {
    db,
    pool,
    close: () => (closed ??= db.destroy().then(() => new Promise<void>((resolve) => {
      // Kysely ends the pool only if it ever used it; ending it twice is harmless.
      pool.end(() => resolve())
    })))
  }
}

/** Where the database is, for messages: host and port (or socket), user and database, never the password. */
export function describeDatabase (config: DatabaseConfig): string {
  const where = config.socketPath !== undefined ? `socket ${config.socketPath}` : `${config.host}:${config.port}`
  return `MySQL at ${where} (user ${config.user}, database ${config.database})`
}

/** The one-line message for a database that does not answer: what, where, and the variable to check. */
export function unreachableMessage (config: DatabaseConfig, err: unknown): string {
  const code = (err as { code?: string }).code ?? (err as Error).message
  return `${describeDatabase(config)} is not reachable (${code}): check that the server is running and DATABASE_URL`
}
