import { Redis } from 'ioredis'
import type { FastifyBaseLogger as Logger } from 'fastify'
import { NOT_FOUND } from './cache.js'

interface Entry {
  /** The answer's bytes, or NOT_FOUND for a known unknown sno. */
  body: Buffer | typeof NOT_FOUND | undefined
  expires: number
  /** From when a read of the copy asks for it to be renewed (see RENEW_SHARE); Infinity once asked. */
  renewAt: number
  /** Bumped by every invalidation, so that a read that started before one cannot fill. */
  stamp: number
  /** Reads in progress: the entry is kept (empty) while any is under way. */
  pending: number
}

export interface NearCacheOptions {
  url: string
  /** The full key prefix to watch, including the client's keyPrefix. */
  prefix: string
  maxEntries: number
  ttlMs: number
  heartbeatMs?: number
}

const CHANNEL = '__redis__:invalidate'
/**
 * Each copy lives between 80 % and 100 % of its TTL. Copies made together (the hot set, read
 * again right after a start) would otherwise all expire together, again every TTL: a burst of
 * Redis reads through the full route that held every other request up.
 */
const TTL_SPREAD = 0.2
/**
 * A copy read in the last quarter of its life is read again from Redis (`reread`) while it goes
 * on being served: a copy in use is replaced before it expires, so that no request for it waits
 * on the way through Redis. The new copy is as fresh as any other read of Redis; one not read
 * near its end expires as before.
 */
const RENEW_SHARE = 0.25
/**
 * Renewals under way at once. When many copies come due together (a hot set after a quiet
 * spell), an unbounded burst would read them all in one reply and parse it in one turn, holding
 * every other request up; the rest are asked for by their next reads, still within their last
 * quarter.
 */
export const MAX_RENEWALS = 32

/**
 * A small in-process copy of recently read /query answers, kept coherent by Redis itself:
 * a dedicated connection turns on server-assisted client-side caching (CLIENT TRACKING
 * BCAST on the cache's key prefix) and receives an invalidation for every key any process
 * changes, so a write in one worker empties the copies in all the others.
 *
 * It is only used while that channel is known to be healthy: when the connection drops or
 * stops answering its heartbeat, the copy is emptied and bypassed until tracking is back.
 */
export class NearCache {
  private readonly entries = new Map<number, Entry>()
  /** Where eviction goes on from (see evictIfFull). */
  private evictCursor: MapIterator<[number, Entry]> | undefined
  private readonly sub: Redis
  private enabled = false
  private heartbeat: NodeJS.Timeout | undefined
  /** Tracking could not be turned on over the connection now open: the next heartbeat reconnects to try again. */
  private trackingFailed = false
  /**
   * Reads `sno` again from Redis for a renewal (its body, or null, and the TTL it is kept for);
   * set by the tracking service. Unset: copies simply expire.
   */
  reread: ((sno: number) => Promise<{ body: string | null, ttlMs?: number }>) | undefined
  private renewals = 0

  constructor (private readonly options: NearCacheOptions, private readonly logger: Logger) {
    this.sub = new Redis(options.url, {
      protocol: 2, // invalidations arrive as ordinary pub/sub messages in RESP2
      autoResubscribe: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 500,
      connectTimeout: 1000,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
      connectionName: 'near-cache'
    })
    this.sub.on('error', () => {})
    this.sub.on('ready', () => { this.track().catch((err: unknown) => { this.trackingNotStarted(err as Error) }) })
    this.sub.on('close', () => this.disable('invalidation channel closed'))
    this.sub.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | null) => this.onInvalidate(keys))
    this.heartbeat = setInterval(() => { this.beat() }, options.heartbeatMs ?? 1000)
    this.heartbeat.unref()
  }

  get active (): boolean {
    return this.enabled
  }

  get size (): number {
    return this.entries.size
  }

  /** The cached answer, if there is a fresh one and the channel is healthy. */
  get (sno: number, now = Date.now()): Buffer | typeof NOT_FOUND | undefined {
    if (!this.enabled) return undefined
    const entry = this.entries.get(sno)
    if (entry?.body === undefined) return undefined
    if (entry.expires < now) {
      entry.body = undefined
      if (entry.pending === 0) this.entries.delete(sno)
      return undefined
    }
    if (entry.renewAt < now && this.renewals < MAX_RENEWALS && this.reread !== undefined) this.renew(sno, entry, this.reread)
    return entry.body
  }

  /** Renewals under way now (for tests and diagnostics). */
  get renewing (): number {
    return this.renewals
  }

  /**
   * Reads a copy again while it is served, kept as any read is (offer), unless invalidated
   * meanwhile. Asked once a copy: the next copy to land (this one or any other read's) sets its
   * own time; if none lands (Redis no longer holds it), this one simply expires.
   */
  private renew (sno: number, entry: Entry, reread: NonNullable<NearCache['reread']>): void {
    entry.renewAt = Infinity
    this.renewals++
    const stamp = this.begin(sno)
    const done = (body: string | null, ttlMs?: number): void => {
      this.renewals--
      this.offer(sno, stamp, body, ttlMs)
    }
    reread(sno).then(({ body, ttlMs }) => { done(body, ttlMs) }, () => { done(null) })
  }

  /** Call before reading Redis for `sno`; pass the result to `offer` (or `abandon`). */
  begin (sno: number): number {
    if (!this.enabled) return -1
    let entry = this.entries.get(sno)
    if (entry === undefined) {
      // Counted as being read before eviction runs, so that eviction cannot take this entry.
      entry = { body: undefined, expires: 0, renewAt: 0, stamp: 0, pending: 1 }
      this.entries.set(sno, entry)
      this.evictIfFull()
    } else {
      entry.pending += 1
    }
    return entry.stamp
  }

  /** Keeps a body read from Redis, unless an invalidation for it came in since `begin`. */
  offer (sno: number, stamp: number, body: string | null, ttlMs = this.options.ttlMs): void {
    if (stamp < 0) return
    const entry = this.entries.get(sno)
    if (entry === undefined) return
    entry.pending -= 1
    if (this.enabled && body !== null && entry.stamp === stamp) {
      // Kept as bytes: a hit is then written to the socket without even a UTF-8 encoding.
      entry.body = body === NOT_FOUND ? NOT_FOUND : Buffer.from(body)
      const now = Date.now()
      const life = Math.min(ttlMs, this.options.ttlMs) * (1 - TTL_SPREAD * Math.random())
      entry.expires = now + life
      entry.renewAt = now + life * (1 - RENEW_SHARE)
      // The newest copy goes to the back of the eviction order (a renewed one too).
      this.entries.delete(sno)
      this.entries.set(sno, entry)
    } else if (entry.pending === 0 && entry.body === undefined) {
      this.entries.delete(sno)
    }
  }

  /** Drops the local copy at once (the writer's own process does not wait for the message). */
  invalidate (sno: number): void {
    const entry = this.entries.get(sno)
    if (entry === undefined) return
    entry.body = undefined
    entry.stamp += 1
    if (entry.pending === 0) this.entries.delete(sno)
  }

  async close (): Promise<void> {
    clearInterval(this.heartbeat)
    this.enabled = false
    this.forgetAll()
    this.sub.disconnect()
  }

  private async track (): Promise<void> {
    const id = await this.sub.client('ID')
    await this.sub.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', this.options.prefix)
    await this.sub.subscribe(CHANNEL)
    // Nothing read before tracking (re)started may be kept: reads under way lose their stamp.
    this.forgetAll()
    this.enabled = true
    this.trackingFailed = false
    this.logger.info('near cache on: invalidations tracked by Redis')
  }

  /**
   * A slow reply while starting (a busy machine: the commands time out at 500 ms) or a refusal:
   * without a retry, the copy would stay off for as long as this connection lasts.
   */
  private trackingNotStarted (err: Error): void {
    if (!this.trackingFailed) this.logger.warn({ reason: err.message }, 'near cache off: Redis invalidation tracking could not start; retrying every heartbeat')
    this.trackingFailed = true
    this.disable('tracking could not start')
  }

  private disable (reason: string): void {
    if (this.enabled) this.logger.warn({ reason }, 'near cache off until Redis invalidations flow again')
    this.enabled = false
    this.forgetAll()
  }

  /** Drops every body and invalidates every read under way (their entries stay until they end). */
  private forgetAll (): void {
    for (const [sno, entry] of this.entries) {
      entry.body = undefined
      entry.stamp += 1
      if (entry.pending === 0) this.entries.delete(sno)
    }
  }

  private beat (): void {
    if (this.sub.status !== 'ready') return
    if (this.trackingFailed) {
      // A new connection starts tracking afresh (its 'ready' runs track again).
      this.sub.disconnect(true)
      return
    }
    this.sub.ping().catch(() => {
      // A silent server could be holding back invalidations: stop trusting the copy, reconnect.
      this.disable('heartbeat failed')
      this.sub.disconnect(true)
    })
  }

  private onInvalidate (keys: Buffer[] | null): void {
    if (keys === null) {
      // FLUSHDB / FLUSHALL: everything goes.
      this.forgetAll()
      return
    }
    for (const key of keys) {
      const text = key.toString()
      const open = text.indexOf('{')
      const close = text.indexOf('}', open)
      if (open >= 0 && close > open) this.invalidate(Number(text.slice(open + 1, close)))
    }
  }

  private evictIfFull (): void {
    // Oldest first (Map keeps insertion order); entries being read are skipped. The cursor is kept
    // from one call to the next: a Map leaves a hole where an entry was deleted until it is
    // rehashed, so a fresh walk from the front stepped over every earlier eviction's hole (on a
    // full cache under misses, this loop was the API's costliest function).
    let wrapped = false
    while (this.entries.size > this.options.maxEntries) {
      this.evictCursor ??= this.entries.entries()
      const next = this.evictCursor.next()
      if (next.done === true) {
        this.evictCursor = undefined
        // Every entry is being read: the table runs over until those reads end.
        if (wrapped) return
        wrapped = true
        continue
      }
      const [sno, entry] = next.value
      if (entry.pending === 0) this.entries.delete(sno)
    }
  }
}
