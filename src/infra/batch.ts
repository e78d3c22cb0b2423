/**
 * Gathers the keys asked for during one turn of the event loop and fetches them with one call
 * (at most `maxBatch` keys per call). Under load, requests that arrive together share one
 * round trip instead of taking one each; a lone request waits only for the end of the turn.
 * A key asked for twice in one turn is fetched once. When the call fails, every caller in the
 * batch gets its error.
 */
export class Batcher<K, V> {
  private queue = new Map<K, Array<Waiter<V>>>()
  private scheduled = false

  constructor (
    private readonly fetchMany: (keys: K[]) => Promise<Map<K, V>>,
    private readonly missing: V,
    private readonly maxBatch = 100
  ) {}

  async load (key: K): Promise<V> {
    return await new Promise<V>((resolve, reject) => {
      const waiters = this.queue.get(key)
      if (waiters === undefined) this.queue.set(key, [{ resolve, reject }])
      else waiters.push({ resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => { this.flush() })
      }
    })
  }

  private flush (): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = new Map()
    const keys = [...queue.keys()]
    for (let i = 0; i < keys.length; i += this.maxBatch) this.dispatch(keys.slice(i, i + this.maxBatch), queue)
  }

  private dispatch (keys: K[], queue: Map<K, Array<Waiter<V>>>): void {
    this.fetchMany(keys).then((found) => {
      for (const key of keys) {
        const value = found.has(key) ? found.get(key) as V : this.missing
        for (const waiter of queue.get(key) ?? []) waiter.resolve(value)
      }
    }, (err: unknown) => {
      for (const key of keys) for (const waiter of queue.get(key) ?? []) waiter.reject(err)
    })
  }
}

interface Waiter<V> {
  resolve: (value: V) => void
  reject: (err: unknown) => void
}
