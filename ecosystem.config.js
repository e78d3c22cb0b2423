// PM2 process file, loaded as ESM (package.json has "type": "module"): a named `apps` export.
// `npm start` builds, migrates, loads the hubs, then runs `pm2-runtime start ecosystem.config.js`.
const env = process.env
const instances = env.API_INSTANCES ?? 'max'

export const apps = [
  {
    name: 'api',
    script: 'dist/server.js',
    exec_mode: 'cluster',
    instances: /^\d+$/.test(instances) ? Number(instances) : instances,
    // A new worker takes traffic only after it has called process.send('ready') (after listen).
    wait_ready: true,
    listen_timeout: 10_000,
    // PM2 sends SIGINT, then SIGKILL after kill_timeout: longer than the drain (SHUTDOWN_TIMEOUT_MS).
    kill_timeout: Number(env.SHUTDOWN_TIMEOUT_MS ?? 10_000) + 5_000,
    max_memory_restart: '400M',
    exp_backoff_restart_delay: 200,
    max_restarts: 50,
    merge_logs: true,
    time: false,
    // NODE_ENV and the rest come from the environment or .env (read by the app itself).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }
  }
]
