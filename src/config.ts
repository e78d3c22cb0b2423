import { isIP } from 'node:net'
import { parse as parseCron } from 'node-cron'

/**
 * The one place that reads the environment. Every variable is validated once, at start-up;
 * a bad value stops the process with a message naming the variable.
 */

export type NodeEnv = 'development' | 'production' | 'test'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface DatabaseConfig {
  url: string
  host: string
  port: number
  user: string
  password: string
  database: string
  socketPath: string | undefined
  poolSize: number
  queueLimit: number
  connectTimeoutMs: number
  acquireTimeoutMs: number
  /** Upper bound for one statement on the API's pool; 0 disables it (scripts, reports). */
  queryTimeoutMs: number
}

export interface Config {
  env: NodeEnv
  isProduction: boolean
  logLevel: LogLevel
  server: {
    host: string
    port: number
    trustProxy: string | number | boolean
    keepAliveTimeoutMs: number
    requestTimeoutMs: number
    shutdownTimeoutMs: number
  }
  db: DatabaseConfig
  redis: {
    url: string
    /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster; when set, REDIS_URL is not used. */
    clusterNodes: Array<{ host: string, port: number }>
    keyPrefix: string
    commandTimeoutMs: number
  }
  cache: {
    ttlSeconds: number
    notFoundTtlSeconds: number
    /** In-process copies (0: none), kept coherent by Redis client-side-caching invalidations. */
    nearEntries: number
    nearTtlSeconds: number
  }
  relay: {
    /** How often the change relay looks for changes whose invalidation may not have landed. */
    intervalMs: number
  }
  webhooks: {
    /** The first retry's delay; later ones grow from it (see src/webhooks/dispatcher.ts). */
    retryBaseMs: number
    timeoutMs: number
  }
  live: {
    /** How often each process reads new changes for its open streams. */
    pollMs: number
    heartbeatMs: number
    maxStreamsPerClient: number
    maxStreams: number
  }
  s3: {
    bucket: string
    endpoint: string | undefined
    region: string
    /** No S3 settings at all: use the embedded s3rver store on loopback. */
    embedded: boolean
    localPort: number
    localDirectory: string
    /** The embedded store's only key pair (it refuses anything not signed with it). */
    localCredentials: { accessKeyId: string, secretAccessKey: string }
  }
  reports: {
    cron: string
    timezone: string
  }
  rateLimit: {
    perMinute: number
    notFoundPerMinute: number
  }
  overload: {
    maxEventLoopDelayMs: number
    maxHeapUsedMb: number
  }
  adminToken: string | undefined
  /** INGEST_TOKENS: carriers' and devices' tokens (orders, events, loading, positions); [] when none. */
  ingestTokens: string[]
  fakeSeed: number | undefined
  piiMask: boolean
  /** METRICS_GC: the API's GC histogram on /metrics (off: Node's entry for each collection costs the hit's p99). */
  metricsGc: boolean
  amqp: AmqpConfig
  fleet: FleetConfig
}

/** The RabbitMQ ingestion consumer (`node dist/ingest.js`). */
export interface AmqpConfig {
  url: string
  /** The durable quorum queue read; its dead-letter queue is `<queue>.dead`. */
  queue: string
  prefetch: number
  /** Attempts before a message that keeps failing goes to the dead-letter queue. */
  deliveryLimit: number
  /** Message types acknowledged and counted, never stored. */
  eventsToOmit: string[]
  /** Messages written in one transaction at most, and how long a batch waits to fill. */
  batchMax: number
  batchWaitMs: number
}

/** Vehicles, positions over MQTT and geofences (src/fleet/, `node dist/fleet.js`). */
export interface FleetConfig {
  mqttUrl: string
  /** The subscriber's fixed client id (its persistent session on the broker). */
  mqttClientId: string
  /** Topics are `<prefix>/<vehicle_id>/position`. */
  topicPrefix: string
  geofenceRadiusM: number
  geofenceDwellS: number
  trackRetentionDays: number
  /** Fixes written in one transaction at most, and how long a batch waits to fill. */
  batchMax: number
  batchWaitMs: number
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

class Reader {
  readonly problems: string[] = []
  constructor (private readonly env: Env) {}

  raw (name: string): string | undefined {
    const value = this.env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  string (name: string, fallback: string): string {
    return this.raw(name) ?? fallback
  }

  int (name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max} (got "${value}")`)
      return fallback
    }
    return Number(value)
  }

  bool (name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase()
    if (value === undefined) return fallback
    if (['1', 'true', 'yes', 'on'].includes(value)) return true
    if (['0', 'false', 'no', 'off'].includes(value)) return false
    this.problems.push(`${name} must be true or false (got "${value}")`)
    return fallback
  }

  oneOf<T extends string> (name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`)
      return fallback
    }
    return value as T
  }

  url (name: string, fallback: string, protocols: string[]): URL {
    const value = this.string(name, fallback)
    try {
      const url = new URL(value)
      if (!protocols.includes(url.protocol)) throw new Error('protocol')
      return url
    } catch {
      this.problems.push(`${name} must be a ${protocols.join(' or ')}// URL (got "${redactUrl(value)}")`)
      return new URL(fallback)
    }
  }
}

/** Hides the password of a URL so that it can be shown in an error message or a log line. */
export function redactUrl (value: string): string {
  try {
    const url = new URL(value)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return value.replace(/\/\/[^@/]*@/, '//***@')
  }
}

/**
 * Whose X-Forwarded-For to believe: a list of addresses or CIDR ranges (default: nginx on the
 * same machine), a number of proxy hops, or false. `true` would let any client forge its address.
 */
function readTrustProxy (read: Reader): string | number | boolean {
  const raw = read.string('TRUST_PROXY', '127.0.0.1,::1')
  if (raw === 'false') return false
  if (/^\d{1,2}$/.test(raw)) return Number(raw)
  const entries = raw.split(',').map((e) => e.trim())
  const valid = entries.every((entry) => {
    const [address, bits, ...rest] = entry.split('/')
    const family = isIP(address)
    if (family === 0 || rest.length > 0) return false
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
  })
  if (!valid) {
    read.problems.push(`TRUST_PROXY must be false, a hop count, or addresses/CIDR ranges separated by commas (got "${raw}")`)
    return '127.0.0.1,::1'
  }
  return entries.join(',')
}

/** Tokens travel as `Authorization: Bearer <token>`: printable ASCII without spaces or commas. */
const TOKEN = /^[\x21-\x2b\x2d-\x7e]+$/
export const MIN_TOKEN_LENGTH = 16

/**
 * INGEST_TOKENS: comma-separated tokens for carriers and devices, each at least 16 characters.
 * Messages name the entry by position, never show a token.
 */
function readIngestTokens (read: Reader, adminToken: string | undefined): string[] {
  const raw = read.raw('INGEST_TOKENS')
  if (raw === undefined) return []
  const entries = raw.split(',').map((e) => e.trim())
  const bad = entries.flatMap((entry, i) => entry.length < MIN_TOKEN_LENGTH || !TOKEN.test(entry) ? [i + 1] : [])
  if (bad.length > 0) {
    read.problems.push(`INGEST_TOKENS must be comma-separated tokens of at least ${MIN_TOKEN_LENGTH} printable characters each, without spaces (entry ${bad.join(', ')} of ${entries.length} is not)`)
    return []
  }
  if (adminToken !== undefined && entries.includes(adminToken)) {
    read.problems.push('INGEST_TOKENS must not contain ADMIN_TOKEN (an ingest token has fewer rights)')
    return []
  }
  return [...new Set(entries)]
}

/** Report slots are whole minutes: a six-field expression must fire at second 0. */
function checkCron (cron: string): string | undefined {
  try {
    parseCron(cron)
  } catch (err) {
    return `must be a cron expression: ${(err as Error).message}`
  }
  const fields = cron.split(/\s+/)
  if (fields.length === 6 && fields[0] !== '0') return 'must fire on whole minutes (seconds field 0)'
  return undefined
}

function isValidTimeZone (zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone }).format(0)
    return true
  } catch {
    return false
  }
}

/** nginx/logistics.conf: `keepalive_timeout 60s` (upstream) and `proxy_read_timeout 35s`. */
const NGINX_UPSTREAM_KEEPALIVE_MS = 60_000
const NGINX_READ_TIMEOUT_MS = 35_000

function readDatabase (read: Reader, env: NodeEnv): DatabaseConfig {
  const url = read.url('DATABASE_URL', 'mysql://root@127.0.0.1:3306/logistics', ['mysql:', 'mariadb:'])
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''))
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(database)) {
    read.problems.push('DATABASE_URL must name a database made of letters, digits, _ or $ (e.g. mysql://root@127.0.0.1:3306/logistics)')
  }
  // A parameter the service would silently ignore (?ssl=true) is refused rather than left to
  // look as if it worked.
  const unknown = [...url.searchParams.keys()].filter((key) => key !== 'socketPath')
  if (unknown.length > 0) {
    read.problems.push(`DATABASE_URL has parameters the service does not use: ${unknown.join(', ')} (only socketPath is read; for TLS, put a TLS-terminating proxy or socket in front)`)
  }
  return {
    url: url.toString(),
    host: url.hostname || '127.0.0.1',
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
    database,
    socketPath: url.searchParams.get('socketPath') ?? undefined,
    poolSize: read.int('DB_POOL_SIZE', 8, 1, 500),
    queueLimit: read.int('DB_QUEUE_LIMIT', 500, 1, 100_000),
    connectTimeoutMs: read.int('DB_CONNECT_TIMEOUT_MS', 2000, 100, 60_000),
    acquireTimeoutMs: read.int('DB_ACQUIRE_TIMEOUT_MS', 2000, 10, 60_000),
    queryTimeoutMs: read.int('DB_QUERY_TIMEOUT_MS', env === 'test' ? 5000 : 3000, 0, 600_000)
  }
}

function readAmqp (read: Reader): AmqpConfig {
  const url = read.url('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672', ['amqp:', 'amqps:'])
  const queue = read.string('AMQP_QUEUE', 'tracking.events')
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(queue)) read.problems.push(`AMQP_QUEUE must be 1 to 200 letters, digits or _ . : - (got "${queue}")`)
  const prefetch = read.int('AMQP_PREFETCH', 500, 1, 5000)
  const batchMax = read.int('AMQP_BATCH_MAX', Math.min(200, prefetch), 1, 500)
  if (batchMax > prefetch) read.problems.push(`AMQP_BATCH_MAX (${batchMax}) must not exceed AMQP_PREFETCH (${prefetch}): a batch could never fill`)
  const eventsToOmit = (read.raw('EVENTS_TO_OMIT') ?? '').split(',').map((type) => type.trim()).filter((type) => type !== '')
  const badType = eventsToOmit.find((type) => !/^[A-Za-z0-9_.-]{1,64}$/.test(type))
  if (badType !== undefined) read.problems.push(`EVENTS_TO_OMIT must be message types separated by commas, such as vehicle.load,vehicle.unload (got "${badType}")`)
  return {
    url: url.toString(),
    queue,
    prefetch,
    deliveryLimit: read.int('AMQP_DELIVERY_LIMIT', 5, 1, 100),
    eventsToOmit,
    batchMax,
    batchWaitMs: read.int('AMQP_BATCH_WAIT_MS', 50, 0, 10_000)
  }
}

function readFleet (read: Reader): FleetConfig {
  const mqttUrl = read.url('MQTT_URL', 'mqtt://127.0.0.1:1883', ['mqtt:', 'mqtts:', 'tcp:'])
  const mqttClientId = read.string('MQTT_CLIENT_ID', 'logistics-fleet')
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(mqttClientId)) read.problems.push(`MQTT_CLIENT_ID must be 1 to 64 letters, digits or _ . : - (got "${mqttClientId}")`)
  const topicPrefix = read.string('MQTT_TOPIC_PREFIX', 'fleet')
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(topicPrefix)) read.problems.push(`MQTT_TOPIC_PREFIX must be topic levels of letters, digits or _ . - (got "${topicPrefix}")`)
  return {
    mqttUrl: mqttUrl.toString(),
    mqttClientId,
    topicPrefix,
    geofenceRadiusM: read.int('GEOFENCE_RADIUS_M', 300, 10, 100_000),
    geofenceDwellS: read.int('GEOFENCE_DWELL_S', 60, 0, 86_400),
    trackRetentionDays: read.int('FLEET_TRACK_RETENTION_DAYS', 30, 1, 3650),
    batchMax: read.int('FLEET_BATCH_MAX', 1000, 1, 5000),
    batchWaitMs: read.int('FLEET_BATCH_WAIT_MS', 20, 0, 10_000)
  }
}

/** REDIS_CLUSTER_NODES=host:port,host:port,… (any reachable nodes of the cluster; the rest are discovered). */
function readClusterNodes (read: Reader): Array<{ host: string, port: number }> {
  const raw = read.raw('REDIS_CLUSTER_NODES')?.trim() ?? ''
  if (raw === '') return []
  const nodes: Array<{ host: string, port: number }> = []
  for (const item of raw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) {
      read.problems.push(`REDIS_CLUSTER_NODES must be host:port pairs separated by commas (got "${item}")`)
      continue
    }
    nodes.push({ host: match[1].replace(/^\[|\]$/g, ''), port })
  }
  return nodes
}

export function loadConfig (env: Env = process.env): Config {
  const read = new Reader(env)
  const nodeEnv = read.oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development')
  const isProduction = nodeEnv === 'production'

  const redisUrl = read.url('REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:'])
  const clusterNodes = readClusterNodes(read)

  const s3Bucket = read.raw('S3_BUCKET')
  const s3Endpoint = read.raw('S3_ENDPOINT')
  const s3Region = read.raw('S3_REGION')
  if (s3Endpoint !== undefined) read.url('S3_ENDPOINT', s3Endpoint, ['http:', 'https:'])
  if (s3Bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3Bucket)) {
    read.problems.push(`S3_BUCKET must be a valid bucket name (got "${s3Bucket}")`)
  }
  if (s3Bucket === undefined && (s3Region !== undefined || s3Endpoint !== undefined)) {
    // Without a bucket of its own the service would write to the default bucket name, on AWS
    // someone else's.
    read.problems.push('S3_BUCKET must be set when S3_REGION or S3_ENDPOINT is (or set none of them for the embedded store)')
  }
  const embedded = s3Bucket === undefined && s3Endpoint === undefined && s3Region === undefined
  const localPort = read.int('S3_LOCAL_PORT', 4569, 1, 65535)
  const localAccessKeyId = read.string('S3_LOCAL_ACCESS_KEY_ID', 'S3RVER')
  const localSecretAccessKey = read.string('S3_LOCAL_SECRET_ACCESS_KEY', 'S3RVER')
  if (embedded && isProduction && localSecretAccessKey.length < 16) {
    read.problems.push('S3_LOCAL_SECRET_ACCESS_KEY must be set to at least 16 characters when NODE_ENV=production and the embedded S3 store is used')
  }

  const cron = read.string('REPORT_CRON', '0 0,8,16 * * *')
  const cronProblem = checkCron(cron)
  if (cronProblem !== undefined) read.problems.push(`REPORT_CRON ${cronProblem} (got "${cron}")`)
  const timezone = read.string('REPORT_TIMEZONE', Intl.DateTimeFormat().resolvedOptions().timeZone)
  if (!isValidTimeZone(timezone)) read.problems.push(`REPORT_TIMEZONE must be an IANA time zone such as Asia/Taipei (got "${timezone}")`)

  const adminToken = read.raw('ADMIN_TOKEN')
  if (isProduction && (adminToken === undefined || adminToken.length < 16)) {
    read.problems.push('ADMIN_TOKEN must be set to at least 16 characters when NODE_ENV=production (it guards /fake and /reports)')
  }

  const ingestTokens = readIngestTokens(read, adminToken)

  const keyPrefix = read.string('REDIS_KEY_PREFIX', '')
  if (!/^[A-Za-z0-9:_.-]{0,64}$/.test(keyPrefix)) read.problems.push('REDIS_KEY_PREFIX may only hold letters, digits and : _ . - (at most 64)')

  const trustProxy = readTrustProxy(read)

  const fakeSeedRaw = read.raw('FAKE_SEED')
  const fakeSeed = fakeSeedRaw === undefined ? undefined : read.int('FAKE_SEED', 0, 0, 2 ** 31 - 1)

  const config: Config = {
    env: nodeEnv,
    isProduction,
    logLevel: read.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, nodeEnv === 'test' ? 'silent' : 'info'),
    server: {
      host: read.string('HOST', '127.0.0.1'),
      port: read.int('PORT', 3000, 0, 65535),
      trustProxy,
      // nginx (nginx/logistics.conf) keeps upstream connections 60 s and waits 35 s for an answer:
      // the API must close idle connections after nginx does, and answer before nginx gives up.
      keepAliveTimeoutMs: read.int('KEEP_ALIVE_TIMEOUT_MS', 65_000, NGINX_UPSTREAM_KEEPALIVE_MS + 1000, 600_000),
      requestTimeoutMs: read.int('REQUEST_TIMEOUT_MS', 30_000, 1000, NGINX_READ_TIMEOUT_MS - 1000),
      shutdownTimeoutMs: read.int('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 120_000)
    },
    db: readDatabase(read, nodeEnv),
    redis: {
      url: redisUrl.toString(),
      clusterNodes,
      keyPrefix,
      commandTimeoutMs: read.int('REDIS_COMMAND_TIMEOUT_MS', 100, 5, 10_000)
    },
    cache: {
      ttlSeconds: read.int('CACHE_TTL_SECONDS', 14_400, 1, 30 * 86_400),
      notFoundTtlSeconds: read.int('CACHE_NOT_FOUND_TTL_SECONDS', 60, 0, 86_400),
      nearEntries: read.int('NEAR_CACHE_ENTRIES', 10_000, 0, 1_000_000),
      nearTtlSeconds: read.int('NEAR_CACHE_TTL_SECONDS', 60, 1, 86_400)
    },
    relay: {
      intervalMs: read.int('CHANGE_RELAY_INTERVAL_MS', 250, 10, 60_000)
    },
    webhooks: {
      retryBaseMs: read.int('WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
      timeoutMs: read.int('WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000)
    },
    live: {
      pollMs: read.int('LIVE_POLL_MS', 100, 10, 10_000),
      heartbeatMs: read.int('LIVE_HEARTBEAT_MS', 15_000, 100, 30_000),
      maxStreamsPerClient: read.int('LIVE_MAX_STREAMS_PER_CLIENT', 20, 1, 100_000),
      maxStreams: read.int('LIVE_MAX_STREAMS', 20_000, 1, 1_000_000)
    },
    s3: {
      bucket: s3Bucket ?? 'logistics-reports',
      endpoint: embedded ? `http://127.0.0.1:${localPort}` : s3Endpoint,
      region: s3Region ?? 'us-east-1',
      embedded,
      localPort,
      localDirectory: read.string('S3_LOCAL_DIR', 'data/s3'),
      localCredentials: { accessKeyId: localAccessKeyId, secretAccessKey: localSecretAccessKey }
    },
    reports: { cron, timezone },
    rateLimit: {
      perMinute: read.int('RATE_LIMIT_PER_MINUTE', 1200, 0, 10_000_000),
      notFoundPerMinute: read.int('RATE_LIMIT_NOT_FOUND_PER_MINUTE', 60, 0, 10_000_000)
    },
    overload: {
      maxEventLoopDelayMs: read.int('MAX_EVENT_LOOP_DELAY_MS', 1000, 0, 60_000),
      maxHeapUsedMb: read.int('MAX_HEAP_USED_MB', 300, 0, 64 * 1024)
    },
    adminToken,
    ingestTokens,
    fakeSeed,
    piiMask: read.bool('PII_MASK', false),
    metricsGc: read.bool('METRICS_GC', false),
    amqp: readAmqp(read),
    fleet: readFleet(read)
  }

  if (read.problems.length > 0) throw new ConfigError(read.problems)
  return config
}

/** Loads `.env` from the working directory when there is one; real environment variables win. */
export function loadEnvFile (path = '.env'): void {
  try {
    process.loadEnvFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
