import { createHash, randomBytes } from 'node:crypto'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { CompiledQuery } from 'kysely'
import type { Db } from '../infra/db.js'
import type { Executor } from '../writes/sql.js'
import { HttpError, badRequest } from '../http/errors.js'
import { MAX_IDEMPOTENCY_KEY } from './schemas.js'

/** How long a key is remembered. */
export const KEY_TTL_HOURS = 24
/**
 * A pending key older than this belongs to a request that died (a crash, a lost connection):
 * the next retry takes it over. Well above any request's run time (REQUEST_TIMEOUT_MS, 30 s).
 */
export const PENDING_STALE_SECONDS = 120
const CLEANUP_EVERY_MS = 60_000
const CLEANUP_BATCH = 1000
const KEY = /^[\x20-\x7e]+$/

/** The right to run one keyed request: its row, marked with an owner no other request has. */
export interface Claim {
  scope: string
  key: string
  owner: string
}

export type Begun = { kind: 'new', claim: Claim } | { kind: 'replay', statusCode: number, body: string }

interface KeyRow {
  request_hash: string
  status_code: number | null
  response: string | null
  expired: number
  stale: number
}

/** The same JSON value whatever the order of object keys and the spacing. */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

export function requestHash (route: string, body: unknown): string {
  return createHash('sha256').update(`${route}\n${canonicalJson(body)}`).digest('hex')
}

/**
 * Idempotency keys in MySQL (table idempotency_keys). A first request commits a pending row
 * (status_code NULL) with the hash of its route and canonical body before it does anything; its
 * answer is stored on the row when it succeeds (in the same transaction as its writes where the
 * caller can), and the row is deleted when it fails, so that a retry can go through. A retry
 * with the same key gets the stored answer, with another body 422, while the first still runs 409.
 * Rows expire after 24 hours; expired ones are deleted now and then, a batch at a time.
 */
export class IdempotencyStore {
  private lastCleanup = 0

  constructor (private readonly db: Db, private readonly log: FastifyBaseLogger) {}

  async begin (scope: string, key: string, hash: string): Promise<Begun> {
    this.cleanup()
    for (let attempt = 0; attempt < 3; attempt++) {
      const owner = randomBytes(16).toString('hex')
      const inserted = await this.db.executeQuery(CompiledQuery.raw(
        'INSERT IGNORE INTO idempotency_keys (scope, idem_key, request_hash, owner, created_at) VALUES (?, ?, ?, ?, NOW(3))',
        [scope, key, hash, owner]))
      if (Number(inserted.numAffectedRows ?? 0) === 1) return { kind: 'new', claim: { scope, key, owner } }

      const { rows } = await this.db.executeQuery<KeyRow>(CompiledQuery.raw(
        `SELECT request_hash, status_code, response,
                created_at < NOW(3) - INTERVAL ${KEY_TTL_HOURS} HOUR AS expired,
                created_at < NOW(3) - INTERVAL ${PENDING_STALE_SECONDS} SECOND AS stale
         FROM idempotency_keys WHERE scope = ? AND idem_key = ?`, [scope, key]))
      const row = rows[0]
      if (row === undefined) continue // deleted in between (its request failed): try again
      if (Number(row.expired) === 1) {
        await this.db.executeQuery(CompiledQuery.raw(
          `DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND created_at < NOW(3) - INTERVAL ${KEY_TTL_HOURS} HOUR`, [scope, key]))
        continue
      }
      if (row.request_hash !== hash) {
        throw new HttpError(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with another request; use a new key for a new request')
      }
      if (row.status_code !== null && row.response !== null) return { kind: 'replay', statusCode: Number(row.status_code), body: row.response }
      if (Number(row.stale) === 1) {
        // The first request died: take its key over (one taker wins; its late writes cannot complete).
        const taken = await this.db.executeQuery(CompiledQuery.raw(
          `UPDATE idempotency_keys SET owner = ?, created_at = NOW(3)
           WHERE scope = ? AND idem_key = ? AND status_code IS NULL AND created_at < NOW(3) - INTERVAL ${PENDING_STALE_SECONDS} SECOND`,
          [owner, scope, key]))
        if (Number(taken.numAffectedRows ?? 0) === 1) return { kind: 'new', claim: { scope, key, owner } }
        continue
      }
      throw new HttpError(409, 'IDEMPOTENCY_KEY_IN_FLIGHT', 'A request with this Idempotency-Key is still being processed; retry shortly', { 'retry-after': '1' })
    }
    throw new HttpError(409, 'IDEMPOTENCY_KEY_IN_FLIGHT', 'This Idempotency-Key is changing hands; retry shortly', { 'retry-after': '1' })
  }

  /**
   * Stores the answer on the claimed row; on `executor` (a transaction) when given, so that the
   * answer commits with the writes. False when the claim was lost (taken over as stale).
   */
  async complete (claim: Claim, statusCode: number, body: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.executeQuery(CompiledQuery.raw(
      'UPDATE idempotency_keys SET status_code = ?, response = ? WHERE scope = ? AND idem_key = ? AND owner = ? AND status_code IS NULL',
      [statusCode, body, claim.scope, claim.key, claim.owner]))
    return Number(result.numAffectedRows ?? 0) === 1
  }

  /** Forgets a claim whose request failed, so that a retry runs it again. */
  async release (claim: Claim): Promise<void> {
    await this.db.executeQuery(CompiledQuery.raw(
      'DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND owner = ? AND status_code IS NULL',
      [claim.scope, claim.key, claim.owner]))
  }

  /** At most once a minute per process, in the background: delete a batch of expired keys. */
  private cleanup (): void {
    const now = Date.now()
    if (now - this.lastCleanup < CLEANUP_EVERY_MS) return
    this.lastCleanup = now
    this.db.executeQuery(CompiledQuery.raw(
      `DELETE FROM idempotency_keys WHERE created_at < NOW(3) - INTERVAL ${KEY_TTL_HOURS} HOUR LIMIT ${CLEANUP_BATCH}`))
      .catch((err: unknown) => { this.log.warn({ err }, 'deleting expired idempotency keys failed') })
  }
}

/** The Idempotency-Key header, checked: undefined when absent. */
export function idempotencyKey (request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key']
  if (header === undefined) return undefined
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_IDEMPOTENCY_KEY || !KEY.test(header)) {
    throw badRequest('IDEMPOTENCY_KEY_INVALID', `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} printable ASCII characters`)
  }
  return header
}

/** What a keyed route produces: the status and the serialized JSON body. */
export interface Answer {
  statusCode: number
  body: string
  /** True when the route stored the answer on the claim itself (inside its transaction). */
  stored?: boolean
}

export interface IdempotentRun {
  store: IdempotencyStore
  request: FastifyRequest
  reply: FastifyReply
  /** Caller identity (a hash of the token, or 'loopback'): keys of different callers never meet. */
  scope: string
  /** The route, part of the request hash: a key reused on another route is a different request. */
  route: string
  body: unknown
  /** Extra headers for an answer (first or replayed), from its body. */
  headers?: (answer: Answer) => Record<string, string>
  run: (claim: Claim | undefined) => Promise<Answer>
}

/**
 * Runs a route's work under the request's Idempotency-Key, if it has one, and sends the answer.
 * Without a key the work just runs.
 */
export async function idempotent (options: IdempotentRun): Promise<FastifyReply> {
  const { store, request, reply } = options
  const send = (answer: Answer, replayed: boolean): FastifyReply => {
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(answer.statusCode).headers(options.headers?.(answer) ?? {}).type('application/json; charset=utf-8').send(answer.body)
  }
  const key = idempotencyKey(request)
  if (key === undefined) return send(await options.run(undefined), false)

  const begun = await store.begin(options.scope, key, requestHash(options.route, options.body))
  if (begun.kind === 'replay') return send({ statusCode: begun.statusCode, body: begun.body }, true)
  const { claim } = begun
  let answer: Answer
  try {
    answer = await options.run(claim)
  } catch (err) {
    await store.release(claim).catch((releaseErr: unknown) => {
      request.log.warn({ err: releaseErr }, 'releasing an idempotency key failed; it is taken over once stale')
    })
    throw err
  }
  if (answer.stored !== true) {
    // The writes have committed: the answer stands even if it cannot be remembered; a retry then
    // runs again and finds its writes done (events answer as duplicates).
    const stored = await store.complete(claim, answer.statusCode, answer.body).catch((err: unknown) => {
      request.log.warn({ err }, 'storing an idempotent answer failed')
      return false
    })
    if (!stored) await store.release(claim).catch(() => {})
  }
  return send(answer, false)
}
