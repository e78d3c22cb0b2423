import { CreateBucketCommand, HeadBucketCommand, HeadObjectCommand, PutBucketLifecycleConfigurationCommand, S3Client } from '@aws-sdk/client-s3'
import type { Config } from '../config.js'

/**
 * AWS S3 through the standard credential chain, an S3-compatible server (MinIO) at
 * S3_ENDPOINT, or the embedded store with its own key pair; path-style addressing for both. Checksums only where S3 requires
 * them: s3rver stores aws-chunked stream uploads corrupted otherwise.
 */
export function createS3Client (config: Config['s3']): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.endpoint !== undefined,
    // The embedded store's own key pair (S3_LOCAL_ACCESS_KEY_ID / S3_LOCAL_SECRET_ACCESS_KEY).
    credentials: config.embedded ? config.localCredentials : undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3
  })
}

const errorName = (err: unknown): string => (err as { name?: string }).name ?? ''

/** Creates the bucket when it is missing, and asks S3 to clean up abandoned multipart uploads. */
export async function ensureBucket (s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }))
    return
  } catch (err) {
    if (!['NotFound', 'NoSuchBucket'].includes(errorName(err))) throw err
  }
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  } catch (err) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(errorName(err))) throw err
  }
  try {
    await s3.send(new PutBucketLifecycleConfigurationCommand({
      Bucket: bucket,
      LifecycleConfiguration: {
        Rules: [{ ID: 'abort-incomplete-uploads', Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }]
      }
    }))
  } catch {
    // Not every S3-compatible store has lifecycle rules (s3rver has none); the runner aborts its own uploads.
  }
}

export function isNotFound (err: unknown): boolean {
  return ['NotFound', 'NoSuchKey'].includes(errorName(err)) || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
}

export async function objectExists (s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    return true
  } catch (err) {
    if (isNotFound(err)) return false
    throw err
  }
}
