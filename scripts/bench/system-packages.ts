import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const APT = '/usr/bin/apt-get'

/**
 * The benchmark's programs that npm does not provide (wrk, the original service's Python runtime),
 * as Debian packages. On a fresh machine where it runs as root with apt-get (as .ci/run installs
 * the servers the tests need), the missing ones are installed, with a line saying so; elsewhere
 * nothing is installed, and the caller finds them still missing and says what to install.
 */
export function installMissing (packages: string[], log: (line: string) => void): void {
  if (packages.length === 0) return
  if (process.getuid?.() !== 0 || !existsSync(APT) || process.env.BENCH_NO_INSTALL === '1') return
  log(`installing Debian packages the benchmark needs: ${packages.join(' ')} …`)
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    execFileSync(APT, ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env })
    execFileSync(APT, ['install', '-y', '-qq', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env })
  } catch {
    log('  apt-get failed: carrying on without them')
  }
}
