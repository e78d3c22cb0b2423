import { parseArgs } from 'node:util'
import type { Config } from '../config.js'
import { parseSpan } from './clock.js'
import type { SimOptions } from './simulation.js'

export const USAGE = `npm run simulate -- [options]

  --speed N            virtual seconds per real second (default 60)
  --vehicles N         vehicles to drive (default 12)
  --parcels N          parcels to book (default 300)
  --seed N             the same seed gives the same routes, outcomes and decisions (default 42)
  --duration SPAN      stop after this much real time (10m, 90s, 1h); default: when every parcel is done
  --capacity N         parcels per vehicle (default 50)
  --api URL            the API (default API_URL, else http://127.0.0.1:$PORT)
  --http-share F       share of scans, loads and unloads sent over HTTP instead of the queue (default 0.2)
  --resend-share F     share of scans sent twice, each to come back a duplicate (default 0.02)
  --fix-interval S     virtual seconds between GPS fixes while driving (default 30)
  --dwell S            the service's GEOFENCE_DWELL_S (default: the same setting here, else 60)
  --radius M           the service's GEOFENCE_RADIUS_M (default: the same setting here, else 300)
  --reuse-vehicles     drive vehicles already registered (GET /fleet) instead of registering new ones
  --run-id ID          names this run's vehicles, idempotency keys and event ids (default: from the clock)
  --bench              scale mode: also measure events/s, positions/s and scan → /query delay
  --json FILE          write the summary as JSON too
  --progress S         seconds between status lines (default 5)
  -v, --verbose        log every action
  -h, --help

Broker and token settings come from the environment, as the service reads them: AMQP_URL,
AMQP_QUEUE, MQTT_URL, MQTT_TOPIC_PREFIX, ADMIN_TOKEN or INGEST_TOKENS.`

export interface CliOptions {
  sim: SimOptions
  api: string
  token: string | undefined
  json: string | undefined
  help: boolean
}

const positive = (name: string, text: string | undefined, fallback: number, integer = true): number => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'} (got "${text}")`)
  return n
}

const share = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`--${name} must be between 0 and 1 (got "${text}")`)
  return n
}

/** The command line and the service's own settings (config) → what the simulation needs. */
export function parseOptions (argv: string[], config: Config, env: Record<string, string | undefined>): CliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      speed: { type: 'string' },
      vehicles: { type: 'string' },
      parcels: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      capacity: { type: 'string' },
      api: { type: 'string' },
      'http-share': { type: 'string' },
      'resend-share': { type: 'string' },
      'fix-interval': { type: 'string' },
      dwell: { type: 'string' },
      radius: { type: 'string' },
      'reuse-vehicles': { type: 'boolean' },
      'run-id': { type: 'string' },
      bench: { type: 'boolean' },
      progress: { type: 'string' },
      json: { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  })
  let durationMs: number | undefined
  if (values.duration !== undefined) {
    durationMs = parseSpan(values.duration)
    if (durationMs === undefined) throw new Error(`--duration must be a span such as 10m, 90s or 1h30m (got "${values.duration}")`)
  }
  const runId = values['run-id'] ?? Math.floor(Date.now() / 1000).toString(36)
  if (!/^[A-Za-z0-9]{1,12}$/.test(runId)) throw new Error('--run-id must be 1 to 12 letters or digits')
  const seedText = values.seed ?? '42'
  if (!/^\d{1,10}$/.test(seedText)) throw new Error(`--seed must be a non-negative integer (got "${seedText}")`)
  const dwell = values.dwell === undefined ? config.fleet.geofenceDwellS : Number(values.dwell)
  if (!Number.isFinite(dwell) || dwell < 0) throw new Error('--dwell must be 0 or more seconds')
  const api = (values.api ?? env.API_URL ?? `http://127.0.0.1:${config.server.port}`).replace(/\/+$/, '')
  return {
    api,
    token: config.adminToken ?? config.ingestTokens[0],
    json: values.json,
    help: values.help === true,
    sim: {
      speed: positive('speed', values.speed, 60, false),
      vehicles: positive('vehicles', values.vehicles, 12),
      parcels: positive('parcels', values.parcels, 300),
      seed: Number(seedText),
      durationMs,
      verbose: values.verbose === true,
      runId,
      capacity: positive('capacity', values.capacity, 50),
      httpShare: share('http-share', values['http-share'], 0.2),
      resendShare: share('resend-share', values['resend-share'], 0.02),
      fixIntervalS: positive('fix-interval', values['fix-interval'], 30, false),
      parkedFixIntervalS: 60,
      radiusM: positive('radius', values.radius, config.fleet.geofenceRadiusM),
      dwellS: dwell,
      reuseVehicles: values['reuse-vehicles'] === true,
      bench: values.bench === true,
      progressEveryMs: positive('progress', values.progress, 5, false) * 1000,
      settleMs: 30_000
    }
  }
}
