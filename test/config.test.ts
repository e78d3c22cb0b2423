import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('defaults work on a developer machine', async (t) => {
  const config = loadConfig({})
  t.equal(config.server.port, 3000)
  t.equal(config.server.host, '127.0.0.1')
  t.equal(config.db.database, 'logistics')
  t.equal(config.db.host, '127.0.0.1')
  t.equal(config.redis.url, 'redis://127.0.0.1:6379/0')
  t.equal(config.cache.ttlSeconds, 14400)
  t.equal(config.reports.cron, '0 0,8,16 * * *')
  t.equal(config.reports.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone, 'the machine\'s zone')
  t.equal(config.s3.embedded, true, 'no S3 settings: the embedded store')
  t.equal(config.adminToken, undefined)
})

t.test('every variable of the contract is read', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    DATABASE_URL: 'mysql://app:s%40cret@db.internal:3307/tracking?socketPath=/run/mysqld/mysqld.sock',
    REDIS_URL: 'redis://cache:6380/2',
    CACHE_TTL_SECONDS: '600',
    S3_BUCKET: 'acme-reports',
    S3_ENDPOINT: 'http://minio:9000',
    S3_REGION: 'ap-northeast-1',
    REPORT_CRON: '0 */4 * * *',
    REPORT_TIMEZONE: 'Asia/Taipei',
    ADMIN_TOKEN: 'x'.repeat(20),
    LOG_LEVEL: 'debug',
    NODE_ENV: 'production',
    FAKE_SEED: '42'
  })
  t.equal(config.server.port, 8080)
  t.equal(config.server.host, '0.0.0.0')
  t.match(config.db, { host: 'db.internal', port: 3307, user: 'app', password: 's@cret', database: 'tracking', socketPath: '/run/mysqld/mysqld.sock' })
  t.equal(config.redis.url, 'redis://cache:6380/2')
  t.equal(config.cache.ttlSeconds, 600)
  t.match(config.s3, { bucket: 'acme-reports', endpoint: 'http://minio:9000', region: 'ap-northeast-1', embedded: false })
  t.equal(config.reports.cron, '0 */4 * * *')
  t.equal(config.reports.timezone, 'Asia/Taipei')
  t.equal(config.logLevel, 'debug')
  t.equal(config.isProduction, true)
  t.equal(config.fakeSeed, 42)
})

t.test('a bad value stops start-up with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /PORT must be an integer from 0 to 65535/],
    [{ DATABASE_URL: 'postgres://x/y' }, /DATABASE_URL must be a mysql/],
    [{ DATABASE_URL: 'mysql://root@127.0.0.1:3306/' }, /DATABASE_URL must name a database/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL must be a redis/],
    [{ CACHE_TTL_SECONDS: '0' }, /CACHE_TTL_SECONDS/],
    [{ REPORT_CRON: 'every morning' }, /REPORT_CRON must be a cron expression/],
    [{ REPORT_CRON: '0 0 30 2 *' }, /REPORT_CRON must be a cron expression/],
    [{ REPORT_CRON: '*/10 * * * * *' }, /REPORT_CRON must fire on whole minutes/],
    [{ REPORT_TIMEZONE: 'Mars/Olympus' }, /REPORT_TIMEZONE must be an IANA time zone/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV must be one of/],
    [{ FAKE_SEED: 'abc' }, /FAKE_SEED must be an integer/],
    [{ S3_BUCKET: 'Bad_Bucket' }, /S3_BUCKET must be a valid bucket name/],
    [{ S3_ENDPOINT: 'minio:9000' }, /S3_ENDPOINT must be a http/],
    [{ TRUST_PROXY: 'true' }, /TRUST_PROXY must be false, a hop count, or addresses/],
    [{ TRUST_PROXY: '10.0.0.0/33' }, /TRUST_PROXY/],
    [{ TRUST_PROXY: 'nginx' }, /TRUST_PROXY/],
    [{ NODE_ENV: 'production' }, /ADMIN_TOKEN must be set/],
    [{ NODE_ENV: 'production', ADMIN_TOKEN: 'short' }, /ADMIN_TOKEN must be set to at least 16/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), message, JSON.stringify(env))
  }
  const err = (() => { try { loadConfig({ PORT: 'x', LOG_LEVEL: 'y' }) } catch (e) { return e } })()
  t.type(err, ConfigError)
  t.equal((err as ConfigError).problems.length, 2, 'all problems at once')
})

t.test('TRUST_PROXY: addresses and ranges, a hop count, or false', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,::1' }).server.trustProxy, '10.0.0.0/8,192.168.1.7,::1')
  t.equal(loadConfig({ TRUST_PROXY: '2' }).server.trustProxy, 2)
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).server.trustProxy, false)
})

t.test('passwords never appear in configuration errors', async (t) => {
  try {
    loadConfig({ DATABASE_URL: 'http://user:hunter2@host/db', REDIS_URL: 'http://:hunter3@cache' })
    t.fail('should have thrown')
  } catch (err) {
    t.match((err as Error).message, /DATABASE_URL.*\*\*\*@host/)
    t.notMatch((err as Error).message, /hunter2|hunter3/)
  }
})

t.test('settings that would be silently wrong are refused', async (t) => {
  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig(env)
      return ''
    } catch (err) {
      return (err as ConfigError).message
    }
  }
  t.match(problems({ DATABASE_URL: 'mysql://root@127.0.0.1:3306/logistics?ssl=true' }), /DATABASE_URL has parameters the service does not use: ssl/)
  t.equal(problems({ DATABASE_URL: 'mysql://root@localhost/logistics?socketPath=/run/mysqld/mysqld.sock' }), '', 'socketPath is read')
  t.match(problems({ S3_REGION: 'ap-northeast-1' }), /S3_BUCKET must be set when S3_REGION or S3_ENDPOINT is/, 'a region alone would write to the default bucket name')
  t.match(problems({ S3_ENDPOINT: 'http://minio:9000' }), /S3_BUCKET must be set/)
  t.match(problems({ KEEP_ALIVE_TIMEOUT_MS: '30000' }), /KEEP_ALIVE_TIMEOUT_MS/, 'below nginx\'s upstream keep-alive: nginx would reuse connections the API closes')
  t.match(problems({ REQUEST_TIMEOUT_MS: '60000' }), /REQUEST_TIMEOUT_MS/, 'above nginx\'s read timeout: nginx would give up first')
  t.equal(problems({ KEEP_ALIVE_TIMEOUT_MS: '65000', REQUEST_TIMEOUT_MS: '30000' }), '')
})
