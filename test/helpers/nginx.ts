import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const exec = promisify(execFile)
export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx'
const SITE = new URL('../../nginx/logistics.conf', import.meta.url).pathname

/**
 * The shipped site config, run by a private nginx on loopback: only the listen port, the
 * upstream port and the log paths are changed; everything else is the file as shipped.
 */
export async function writeNginxConfig (t: Test, listenPort: number, upstreamPort: number): Promise<{ dir: string, conf: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lt-nginx-'))
  await chmod(dir, 0o755)
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const site = (await readFile(SITE, 'utf8'))
    .replace('server 127.0.0.1:3000', `server 127.0.0.1:${upstreamPort}`)
    .replace(/listen 80;/, `listen 127.0.0.1:${listenPort};`)
    .replace(/\s*listen \[::\]:80;/, '')
    .replace(/\/var\/log\/nginx\//g, `${dir}/`)
  await writeFile(path.join(dir, 'site.conf'), site)
  const conf = path.join(dir, 'nginx.conf')
  await writeFile(conf, `
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`)
  return { dir, conf }
}

export async function nginxTest (conf: string, dir: string): Promise<{ ok: boolean, output: string }> {
  try {
    const { stderr } = await exec(NGINX, ['-t', '-c', conf, '-p', `${dir}/`])
    return { ok: true, output: stderr }
  } catch (err) {
    return { ok: false, output: (err as { stderr?: string }).stderr ?? String(err) }
  }
}

export async function startNginx (t: Test, conf: string, dir: string): Promise<ChildProcess> {
  const child = spawn(NGINX, ['-c', conf, '-p', `${dir}/`, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode !== null) return
    await new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGQUIT')
    })
  })
  return child
}
