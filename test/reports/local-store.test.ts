import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { TEST_S3_CREDENTIALS, TestS3 } from '../helpers/s3.js'
import { ensureBucket } from '../../src/infra/s3.js'

const run = promisify(execFile)
const s3server = await TestS3.start(t)
const bucket = 'store-auth'
const client = (credentials = TEST_S3_CREDENTIALS): S3Client => {
  const c = new S3Client({ region: 'us-east-1', endpoint: s3server.endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1 })
  t.teardown(() => c.destroy())
  return c
}
const s3 = client()
await ensureBucket(s3, bucket)
const key = 'reports/2026-11-22/0800-summary.json'
await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"totalOrders":1}', ContentType: 'application/json' }))
const url = `${s3server.endpoint}/${bucket}/${key}`
const stored = async (): Promise<string> => await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString()
const code = async (res: Response): Promise<string> => /<Code>([^<]+)<\/Code>/.exec(await res.text())?.[1] ?? `(no code, HTTP ${res.status})`

t.test('unsigned requests are refused: no read, no overwrite, no delete', async (t) => {
  for (const [method, body] of [['GET', undefined], ['PUT', '{"forged":true}'], ['DELETE', undefined]] as const) {
    const res = await fetch(url, { method, body })
    t.equal(res.status, 403, `${method} without a signature`)
    t.equal(await code(res), 'AccessDenied')
  }
  const list = await fetch(`${s3server.endpoint}/${bucket}?list-type=2`)
  t.equal(list.status, 403, 'no listing either')
  t.equal(await stored(), '{"totalOrders":1}', 'the object is untouched')
})

t.test('zeroed, forged and foreign signatures are refused', async (t) => {
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
  const zeroed = await fetch(url, {
    method: 'PUT',
    body: '{"forged":true}',
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=${TEST_S3_CREDENTIALS.accessKeyId}/${now.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`,
      'x-amz-date': now,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD'
    }
  })
  t.equal(zeroed.status, 403, 'a zeroed signature')
  t.equal(await code(zeroed), 'SignatureDoesNotMatch')

  await t.rejects(client({ accessKeyId: TEST_S3_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' }).send(new GetObjectCommand({ Bucket: bucket, Key: key })), { name: 'SignatureDoesNotMatch' }, 'the right key id with a wrong secret')
  await t.rejects(client({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' })), { name: 'InvalidAccessKeyId' }, 's3rver\'s built-in S3RVER key no longer works')

  const v2 = await fetch(url, { headers: { authorization: `AWS ${TEST_S3_CREDENTIALS.accessKeyId}:${Buffer.alloc(20).toString('base64')}`, date: new Date().toUTCString() } })
  t.equal(v2.status, 400, 'signature version 2 is not accepted')
  t.equal(await stored(), '{"totalOrders":1}', 'the object is untouched')
})

t.test('presigned URLs work until they expire, and only for what was signed', async (t) => {
  const presigned = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 60 })
  const ok = await fetch(presigned)
  t.equal(ok.status, 200)
  t.equal(await ok.text(), '{"totalOrders":1}')

  const otherKey = presigned.replace('0800-summary', '1600-summary')
  t.equal((await fetch(otherKey)).status, 403, 'another key with the same signature')
  t.equal((await fetch(presigned, { method: 'DELETE' })).status, 403, 'another method')

  const old = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 60, signingDate: new Date(Date.now() - 120_000) })
  const expired = await fetch(old)
  t.equal(expired.status, 403, 'expired')
  t.match(await expired.text(), /Request has expired/)

  const twice = await fetch(presigned, { headers: { authorization: 'Bearer some-api-token' } })
  t.equal(twice.status, 400, 'a presigned URL plus an Authorization header, as S3 answers')
  t.notMatch(await twice.text(), /some-api-token/, 'the header is not echoed')
})

t.test('other real SigV4 clients: curl --aws-sigv4 and the AWS CLI', async (t) => {
  // S3 wants x-amz-content-sha256 on every SigV4 request; curl 7.88 signs it when given.
  const { stdout } = await run('curl', ['-sS', '--fail-with-body', '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${TEST_S3_CREDENTIALS.accessKeyId}:${TEST_S3_CREDENTIALS.secretAccessKey}`, url])
  t.equal(stdout, '{"totalOrders":1}', 'curl signs its own request')
  const wrong = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${TEST_S3_CREDENTIALS.accessKeyId}:wrong`, url])
  t.equal(wrong.stdout, '403')

  const aws = await run('aws', ['--version']).then(() => true, () => false)
  if (!aws) {
    t.comment('the AWS CLI is not installed: skipped')
    return
  }
  const env = { ...process.env, AWS_DEFAULT_REGION: 'us-east-1' }
  const ls = await run('aws', ['--endpoint-url', s3server.endpoint, 's3', 'ls', `s3://${bucket}/reports/`, '--recursive'], { env })
  t.match(ls.stdout, /reports\/2026-11-22\/0800-summary\.json/)
  const cp = await run('aws', ['--endpoint-url', s3server.endpoint, 's3', 'cp', `s3://${bucket}/${key}`, '-'], { env })
  t.equal(cp.stdout, '{"totalOrders":1}')
  const denied = await run('aws', ['--endpoint-url', s3server.endpoint, 's3', 'cp', `s3://${bucket}/${key}`, '-'], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' } }).then(() => 'ok', (err: { stderr: string }) => err.stderr)
  t.match(denied, /SignatureDoesNotMatch|403|Forbidden/)
})
