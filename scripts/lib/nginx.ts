import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const exec = promisify(execFile)
export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx'
const SITE = new URL('../../nginx/logistics.conf', import.meta.url).pathname

/**
 * Runs the shipped site config (nginx/logistics.conf) as a private, unprivileged-style nginx
 * on loopback: only listen ports, upstream ports and log paths change. One server block per
 * (listen port → upstream port) pair, all from the same file.
 */
export async function writeNginxConfig (sites: Array<{ listen: number, upstream: number }>, dir?: string): Promise<{ dir: string, conf: string }> {
  const folder = dir ?? await mkdtemp(path.join(tmpdir(), 'lt-nginx-'))
  await chmod(folder, 0o755)
  const template = await readFile(SITE, 'utf8')
  const includes: string[] = []
  for (const [i, site] of sites.entries()) {
    const text = template
      .replace('upstream logistics_api', `upstream logistics_api_${i}`)
      .replaceAll('proxy_pass http://logistics_api;', `proxy_pass http://logistics_api_${i};`)
      .replace('server 127.0.0.1:3000', `server 127.0.0.1:${site.upstream}`)
      .replace(/listen 80;/, `listen 127.0.0.1:${site.listen};`)
      .replace(/\s*listen \[::\]:80;/, '')
      .replace(/log_format logistics/, i === 0 ? 'log_format logistics' : `log_format logistics_${i}`)
      .replace(/access_log (\S+) logistics;/, `access_log $1 ${i === 0 ? 'logistics' : `logistics_${i}`};`)
      .replace(/\/var\/log\/nginx\/logistics/g, `${folder}/site${i}`)
    const file = path.join(folder, `site${i}.conf`)
    await writeFile(file, text)
    includes.push(`  include ${file};`)
  }
  const conf = path.join(folder, 'nginx.conf')
  await writeFile(conf, `
user root;
worker_processes 1;
pid ${folder}/nginx.pid;
error_log ${folder}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http {
  access_log ${folder}/access.log;
  client_body_temp_path ${folder}/client_body;
  proxy_temp_path ${folder}/proxy;
  fastcgi_temp_path ${folder}/fastcgi;
  uwsgi_temp_path ${folder}/uwsgi;
  scgi_temp_path ${folder}/scgi;
${includes.join('\n')}
}
`)
  return { dir: folder, conf }
}

/** `nginx -t` on a config written by writeNginxConfig. */
export async function nginxTest (conf: string, dir: string): Promise<{ ok: boolean, output: string }> {
  try {
    const { stderr } = await exec(NGINX, ['-t', '-c', conf, '-p', `${dir}/`])
    return { ok: true, output: stderr }
  } catch (err) {
    return { ok: false, output: (err as { stderr?: string }).stderr ?? String(err) }
  }
}

/** Starts nginx in the foreground; `stop()` asks it to finish gracefully (SIGQUIT). */
export function startNginx (conf: string, dir: string): { child: ChildProcess, stop: () => Promise<void> } {
  const child = spawn(NGINX, ['-c', conf, '-p', `${dir}/`, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] })
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return
      await new Promise((resolve) => {
        child.once('exit', resolve)
        child.kill('SIGQUIT')
      })
    }
  }
}
