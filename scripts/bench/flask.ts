import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'

const exec = promisify(execFile)

/**
 * The original Flask service (a faithful re-implementation of its /query, in
 * /work/shared/bench/seed-flask, or SEED_FLASK_DIR), run as its README deploys it: Flask's
 * threaded built-in server, and under gunicorn with 2 workers. Nothing is installed here (the
 * bench installs FLASK_PACKAGES when it can): when Debian's packages are still missing, the line
 * to install them is returned and the rows are skipped.
 */
export const FLASK_DIR = process.env.SEED_FLASK_DIR ?? '/work/shared/bench/seed-flask'
const PYTHON = '/usr/bin/python3'
const GUNICORN = '/usr/bin/gunicorn'
export const FLASK_PACKAGES = ['python3-flask', 'python3-sqlalchemy', 'python3-redis', 'python3-pymysql', 'gunicorn']
export const FLASK_INSTALL = `apt-get install -y ${FLASK_PACKAGES.join(' ')}`
const SOCKET = '/run/mysqld/mysqld.sock'

export interface FlaskAvailability {
  deployed: boolean
  gunicorn: boolean
  /** Debian's packages for it are missing (FLASK_PACKAGES would make it run). */
  runtimeMissing?: boolean
  /** Why a row is skipped, with the line that would make it run. */
  missing?: string
}

export function flaskAvailability (): FlaskAvailability {
  if (!existsSync(`${FLASK_DIR}/app.py`)) return { deployed: false, gunicorn: false, missing: `${FLASK_DIR}/app.py not found (set SEED_FLASK_DIR)` }
  try {
    execFileSync(PYTHON, ['-c', 'import flask, sqlalchemy, redis, pymysql'], { stdio: 'ignore' })
  } catch {
    return { deployed: false, gunicorn: false, runtimeMissing: true, missing: `the Flask runtime is not installed: ${FLASK_INSTALL}` }
  }
  const gunicorn = existsSync(GUNICORN)
  return { deployed: true, gunicorn, runtimeMissing: !gunicorn, missing: gunicorn ? undefined : `gunicorn is not installed: ${FLASK_INSTALL}` }
}

/** Its DATABASE_URL as the README has it (root over the socket), or TCP when there is no socket. */
export function flaskDatabaseUrl (host: string, port: number): string {
  return existsSync(SOCKET)
    ? `mysql+pymysql://root@localhost/seedbench?unix_socket=${SOCKET}&charset=utf8mb4`
    : `mysql+pymysql://root@${host}:${port}/seedbench?charset=utf8mb4`
}

/** Loads its data set (load_data.py) unless `seedbench` already holds `orders` orders. */
export async function ensureFlaskData (orders: number, present: number, log: (m: string) => void): Promise<void> {
  if (present === orders) return
  log(`loading the original service's data set (seedbench, ${orders} orders) …`)
  const env = existsSync(SOCKET) ? process.env : { ...process.env, MYSQL_HOST: '127.0.0.1' }
  await exec(PYTHON, ['load_data.py', '--orders', String(orders)], { cwd: FLASK_DIR, env })
}

export function startFlask (mode: 'deployed' | 'gunicorn', port: number, env: Record<string, string>): ChildProcess {
  const [command, argv] = mode === 'deployed'
    ? [PYTHON, ['app.py']]
    : [GUNICORN, ['-w', '2', '-b', `127.0.0.1:${port}`, '--chdir', FLASK_DIR, 'app:app']]
  return spawn(command, argv, { cwd: FLASK_DIR, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'ignore'] })
}
