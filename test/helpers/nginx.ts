import { rm } from 'node:fs/promises'
import type { Test } from 'tap'
import { nginxTest, startNginx as start, writeNginxConfig as write } from '../../scripts/lib/nginx.js'

export { nginxTest }

/** The shipped site config on a private nginx (see scripts/lib/nginx.ts); removed at the end. */
export async function writeNginxConfig (t: Test, listenPort: number, upstreamPort: number): Promise<{ dir: string, conf: string }> {
  const written = await write([{ listen: listenPort, upstream: upstreamPort }])
  t.teardown(async () => await rm(written.dir, { recursive: true, force: true }))
  return written
}

export async function startNginx (t: Test, conf: string, dir: string): Promise<void> {
  const nginx = start(conf, dir)
  t.teardown(nginx.stop)
}
