import type { Readable } from 'node:stream'
import { GetObjectCommand, ListObjectsV2Command, type _Object } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { Config } from '../config.js'
import { createS3Client, isNotFound, objectExists } from '../infra/s3.js'

/** What the download routes need from S3: list, check and sign report objects. */
export class ReportStorage {
  private readonly s3

  constructor (private readonly config: Config['s3']) {
    this.s3 = createS3Client(config)
  }

  /** Every object under reports/ (all pages). */
  async list (): Promise<_Object[]> {
    const objects: _Object[] = []
    let token: string | undefined
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: 'reports/', ContinuationToken: token }))
      objects.push(...(page.Contents ?? []))
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return objects
  }

  async exists (key: string): Promise<boolean> {
    return await objectExists(this.s3, this.config.bucket, key)
  }

  /** The object as a stream, or null when there is none. */
  async open (key: string): Promise<{ body: Readable, size: number | undefined, type: string | undefined, lastModified: Date | undefined } | null> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }))
      return { body: object.Body as Readable, size: object.ContentLength, type: object.ContentType, lastModified: object.LastModified }
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  async downloadUrl (key: string, seconds: number): Promise<string> {
    return await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), { expiresIn: seconds })
  }

  close (): void {
    this.s3.destroy()
  }
}
