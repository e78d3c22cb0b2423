import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, loadEnvFile } from './config.js'
import { createLogger } from './logger.js'
import { startEmbeddedStore } from './reports/local-store.js'

/** `node dist/local-s3.js`: the embedded S3 store as a process of its own (PM2 runs it). */
async function main (): Promise<void> {
  loadEnvFile()
  const config = loadConfig()
  const logger = createLogger(config.logLevel, 'local-s3')
  const store = await startEmbeddedStore(config.s3)
  logger.info({ endpoint: config.s3.endpoint, bucket: config.s3.bucket, directory: config.s3.localDirectory }, 'local S3 store listening')
  closeWithGrace({ delay: 5000 }, async () => { await store.close() })
  process.send?.('ready')
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
})
