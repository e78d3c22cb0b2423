// PM2 process file, loaded as ESM (package.json has "type": "module"): a named `apps` export.
// `npm start` builds, migrates, loads the hubs, then runs `pm2-runtime start ecosystem.config.js`.
import { existsSync } from 'node:fs'

// The same .env the processes read, so that PM2 sees API_INSTANCES and the S3 settings too.
if (existsSync('.env')) process.loadEnvFile('.env')
const env = process.env
const instances = env.API_INSTANCES ?? 'max'
const drainMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? 10_000)
// No S3 configured: run the embedded S3-compatible store (files under ./data/s3).
const embeddedS3 = [env.S3_BUCKET, env.S3_ENDPOINT, env.S3_REGION].every((v) => v === undefined || v === '')

/**
 * Node's flags for the API processes (also given by the benchmark to the API and to its ceilings).
 * V8's memory reducer runs a full collection that shrinks the heap once a process has been quiet
 * for a while; the first burst of requests after it then ran while the heap grew back: two API
 * processes each given 1 s of /query hits every 6 s, side by side, gave a p99 of 59 ms against
 * 2.3 ms in the round after it ran (docs/performance.md). Kept off, the heap stays as sized under load.
 *
 * V8's allocation-site pretenuring puts the objects made at a site straight into the old generation
 * once most of them have outlived a scavenge. A process started on busy cores can have a site of
 * the request path judged so while its first requests wait on Redis; each request's objects then
 * go to the old generation and keep the young ones they point to alive until a full collection.
 * One API process was caught serving 49,000 hits/s where a fresh one of the same build served
 * 77,000: its scavenges took 6 ms and kept 6.5 of every 10 MB, a mark-compact every few of them
 * freed 96 MB, and copying survivors cost 2.9 of its 21 µs a request (perf). With pretenuring off a
 * healthy process is as fast: 73,400 against 72,400 hits/s, 22,100 against 21,200 misses/s, in turns.
 */
export const API_NODE_ARGS = ['--no-memory-reducer', '--no-allocation-site-pretenuring']

const common = {
  // NODE_ENV and the rest come from the environment or .env (read by each process itself).
  env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  merge_logs: true,
  exp_backoff_restart_delay: 200,
  max_restarts: 50,
  min_uptime: 5_000
}

export const apps = [
  {
    ...common,
    name: 'api',
    script: 'dist/server.js',
    node_args: API_NODE_ARGS,
    exec_mode: 'cluster',
    instances: /^\d+$/.test(instances) ? Number(instances) : instances,
    // A new worker takes traffic only after process.send('ready') (after listen); on reload the
    // old one is stopped only then, and gets SIGINT, then SIGKILL after kill_timeout (> the drain).
    wait_ready: true,
    listen_timeout: 15_000,
    kill_timeout: drainMs + 5_000,
    max_memory_restart: '400M'
  },
  {
    ...common,
    name: 'worker',
    script: 'dist/worker.js',
    exec_mode: 'fork',
    instances: 1,
    // A report interrupted by a stop is made again at the next start (catch-up).
    kill_timeout: drainMs + 5_000,
    max_memory_restart: '600M'
  },
  {
    ...common,
    name: 'fleet',
    // The MQTT position subscriber: exactly one (it holds the broker session MQTT_CLIENT_ID, and
    // one writer keeps each vehicle's fixes in order). It acknowledges a fix only after its
    // commit, so a stop or crash loses none: the broker redelivers what was not acknowledged.
    script: 'dist/fleet.js',
    exec_mode: 'fork',
    instances: 1,
    wait_ready: true,
    listen_timeout: 30_000,
    kill_timeout: drainMs + 5_000,
    max_memory_restart: '400M'
  },
  {
    ...common,
    name: 'ingest',
    // The RabbitMQ consumer (AMQP_QUEUE): one process, batches acknowledged only after commit.
    // On SIGINT it stops consuming, finishes and acknowledges the batch under way, then closes;
    // what it had not started goes back to the queue. kill_timeout leaves it the drain delay.
    script: 'dist/ingest.js',
    exec_mode: 'fork',
    instances: 1,
    wait_ready: true,
    listen_timeout: 30_000,
    kill_timeout: drainMs + 5_000,
    max_memory_restart: '400M'
  },
  ...(embeddedS3
    ? [{
        ...common,
        name: 's3-local',
        script: 'dist/local-s3.js',
        exec_mode: 'fork',
        instances: 1,
        kill_timeout: 5_000
      }]
    : [])
]
