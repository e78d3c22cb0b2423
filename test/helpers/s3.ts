import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { freePort } from './redis.js'

// The store accepts only requests signed with its key pair; the clients of the tests (the
// standard AWS credential chain) sign with the same one.
export const TEST_S3_CREDENTIALS = { accessKeyId: 'lt-test-access-key', secretAccessKey: 'lt-test-secret-access-key-0123456789' }
process.env.AWS_ACCESS_KEY_ID = TEST_S3_CREDENTIALS.accessKeyId
process.env.AWS_SECRET_ACCESS_KEY = TEST_S3_CREDENTIALS.secretAccessKey
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

const ENTRY = new URL('../../src/local-s3.ts', import.meta.url).pathname

async function answers (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * The service's own embedded S3 store (src/local-s3.ts: s3rver plus AbortMultipartUpload) as
 * a child process on a free port, in a temporary folder. `stop()` kills it (SIGKILL, as a crash
 * would) and `start()` brings it back on the same port with the same files.
 */
export class TestS3 {
  private child: ChildProcess | undefined
  private constructor (readonly port: number, readonly directory: string) {}

  static async start (t: Test): Promise<TestS3> {
    const directory = await mkdtemp(path.join(tmpdir(), 'lt-s3-'))
    const s3 = new TestS3(await freePort(), directory)
    await s3.start()
    t.teardown(async () => {
      await s3.stop()
      await rm(directory, { recursive: true, force: true })
    })
    return s3
  }

  get endpoint (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Environment for testConfig: an S3-compatible endpoint (not the embedded store). */
  env (bucket: string): Record<string, string> {
    return { S3_ENDPOINT: this.endpoint, S3_BUCKET: bucket, S3_REGION: 'us-east-1' }
  }

  async start (): Promise<void> {
    this.child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
      env: {
        ...process.env,
        S3_LOCAL_PORT: String(this.port),
        S3_LOCAL_DIR: this.directory,
        S3_LOCAL_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId,
        S3_LOCAL_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'test'
      },
      // Piped, not inherited: a store left behind by a test killed on its timeout must not hold
      // the test run's output open (the run would never end).
      stdio: ['ignore', 'ignore', 'pipe']
    })
    this.child.stderr?.pipe(process.stderr)
    const deadline = Date.now() + 15_000
    while (!await answers(this.port)) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('the local S3 store did not start')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined || child.exitCode !== null) return
    await new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGKILL')
    })
  }

  /** Multipart uploads the store still holds (started, neither completed nor aborted). */
  async pendingUploads (bucket: string): Promise<string[]> {
    try {
      return await readdir(path.join(this.directory, bucket, '._S3rver_uploads'))
    } catch {
      return []
    }
  }
}
