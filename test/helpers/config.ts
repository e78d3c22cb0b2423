import { loadConfig, type Config } from '../../src/config.js'

/**
 * A configuration of its own for each test file: database `lt_<name>` and Redis keys under
 * `lt:<name>:`, so that files can run in parallel without seeing each other's data.
 */
/**
 * A tag of this test run (npm test sets one), so that two runs on one machine (a developer's and
 * CI's) never share a database, keys or queues.
 */
export const RUN = (process.env.TEST_RUN_ID ?? '').replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 8)

export function testConfig (name: string, env: Record<string, string | undefined> = {}): Config {
  const safe = (RUN === '' ? '' : `${RUN}_`) + name.replace(/[^A-Za-z0-9_]/g, '_').toLowerCase()
  const base = new URL(process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/x')
  base.pathname = `/lt_${safe}`
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: base.toString(),
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    REDIS_KEY_PREFIX: `lt:${safe}:`,
    PORT: '0',
    // Overload shedding depends on the machine's load at the moment; only the overload test turns it on.
    MAX_EVENT_LOOP_DELAY_MS: '0',
    MAX_HEAP_USED_MB: '0',
    ...env
  })
}
