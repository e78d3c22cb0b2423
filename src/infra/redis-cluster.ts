import { Cluster, type Redis } from 'ioredis'
import type { Config } from '../config.js'

/** The number of hash slots of a Redis Cluster. */
export const SLOTS = 16384

// CRC16-CCITT (XMODEM), the checksum Redis Cluster takes the slot from.
const CRC_TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  CRC_TABLE[i] = crc
}

function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff]
  return crc
}

/**
 * The hash slot of a key, as Redis Cluster computes it: of the hash tag (the text between the
 * first `{` and the next `}`, when not empty), otherwise of the whole key.
 */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(key)) % SLOTS
}

/** The slot of an order's cache keys (`…:{sno}`); the client's key prefix has no braces, so it does not count. */
export function orderSlot (sno: number): number {
  return keySlot(`{${sno}}`)
}

/** Items grouped by the slot `slotOf` gives, in their original order within each group. */
export function groupBySlot<T> (items: readonly T[], slotOf: (item: T) => number): T[][] {
  const groups = new Map<number, T[]>()
  for (const item of items) {
    const slot = slotOf(item)
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [item])
    else group.push(item)
  }
  return [...groups.values()]
}

/**
 * A cluster client with the single-server client's manners (see redisOptions): no offline queue,
 * a timeout on every command, bounded reconnection, and no silent resend of a command whose
 * connection closed or whose cluster was down (a resend could reach a master that has just
 * restarted from a snapshot before its boot marker was checked). Redirections (MOVED, ASK) during
 * resharding are still followed. The key prefix is applied by the cluster client only: commands
 * sent straight to one node (`cluster.nodes()`) see the full key names.
 */
export function createCluster (config: Config['redis'], name: string): Cluster {
  const retry = (attempt: number): number => Math.min(100 * attempt, 1000)
  return new Cluster(config.clusterNodes, {
    keyPrefix: config.keyPrefix,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    // The cache's scripts take a variable number of keys, so their first argument is the key
    // count, which the cluster client's auto-pipelining would take for a key (and put commands
    // for different nodes in one pipeline): they are sent on their own.
    autoPipeliningIgnoredCommands: ['readTracking', 'storeIfUnchanged'],
    enableReadyCheck: true,
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 1000,
    slotsRefreshInterval: 5000,
    clusterRetryStrategy: retry,
    // A node whose connection drops reconnects by itself (a master restarted on the same address).
    clusterNodeRetryStrategy: retry,
    redisOptions: {
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: 1000,
      connectionName: name
    }
  })
}

/** `host:port` of a node connection, as the cluster client's slot table names it. */
export function nodeKey (node: Redis): string {
  return `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`
}

/** The masters that own slots now, each with the slots it owns (from the client's slot table). */
export function slotOwners (cluster: Cluster): Map<string, number[]> {
  const owners = new Map<string, number[]>()
  cluster.slots.forEach((keys, slot) => {
    const owner = keys?.[0]
    if (owner === undefined) return
    const slots = owners.get(owner)
    if (slots === undefined) owners.set(owner, [slot])
    else slots.push(slot)
  })
  return owners
}

/** A short hash tag whose slot is one of `slots` (so a key carrying it lands on their owner). */
export function tagForSlots (slots: readonly number[]): string | undefined {
  const wanted = new Set(slots)
  if (wanted.size === 0) return undefined
  for (let n = 0; n < 1_000_000; n++) {
    if (wanted.has(keySlot(`{${n}}`))) return String(n)
  }
  return undefined
}
