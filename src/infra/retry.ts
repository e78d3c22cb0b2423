export interface RetryOptions {
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** Called before each new attempt, with the error that ended the previous one. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
  signal?: AbortSignal
}

/** Runs `work` until it succeeds, waiting base·2^n (with jitter, capped) between attempts. */
export async function withRetry<T> (work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt)
    } catch (err) {
      if (attempt >= options.attempts || options.signal?.aborted === true) throw err
      const delay = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5)
      options.onRetry?.(err, attempt, Math.round(delay))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        options.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
  }
}
