import type { MetricValueWithName } from 'prom-client'

interface Series {
  labels: { route: string, method: string, status: string }
  /** Observations per bucket, not cumulative; the last one is above every bound (+Inf). */
  counts: Float64Array
  sum: number
  count: number
}

/**
 * A Prometheus histogram of request durations by route, method and status, registered with
 * prom-client's registry (which formats it like its own Histogram). An observation is a Map
 * lookup and two additions: prom-client's Histogram checks and hashes its labels on every call,
 * which on the /query hit path cost more than the rest of the metrics put together.
 */
export class RequestDurations {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly series = new Map<string, Series>()

  constructor (readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  observe (route: string, method: string, status: number, seconds: number): void {
    this.add(this.seriesOf(route, method, status), seconds)
  }

  /** An observer of one route, method and status, for a caller that always answers the same. */
  observer (route: string, method: string, status: number): (seconds: number) => void {
    const series = this.seriesOf(route, method, status)
    return (seconds) => { this.add(series, seconds) }
  }

  private seriesOf (route: string, method: string, status: number): Series {
    const key = `${route} ${method} ${status}`
    let series = this.series.get(key)
    if (series === undefined) {
      series = { labels: { route, method, status: String(status) }, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }
      this.series.set(key, series)
    }
    return series
  }

  private add (series: Series, seconds: number): void {
    let bucket = 0
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]) bucket++
    series.counts[bucket]++
    series.sum += seconds
    series.count++
  }

  /** Forgets every observation (the registry's resetMetrics). */
  reset (): void {
    this.series.clear()
  }

  /** What the registry reads at scrape time. */
  async get (): Promise<{ name: string, help: string, type: string, values: Array<MetricValueWithName<string>>, aggregator: string }> {
    const values: Array<MetricValueWithName<string>> = []
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative })
      })
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count },
        { metricName: `${this.name}_sum`, labels, value: sum },
        { metricName: `${this.name}_count`, labels, value: count })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
