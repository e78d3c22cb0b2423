/** The documented examples from the contract, used to check answers field by field. */
export const QUERY_EXAMPLE = {
  sno: '3',
  tracking_status: 'Delivered',
  estimated_delivery: '2023-12-02',
  current_location: { location_id: 3, title: '桃園物流中心', address: '桃園市中壢區中央西路三段150號' },
  details: [
    { id: 52, date: '2023-12-02', time: '2023-12-02T09:15:00.000+08:00', status: 'Created', location_id: 1, location_title: '花蓮物流中心' }
  ],
  recipient: { id: 1248, name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '096678901' }
}

export const FAKE_EXAMPLE = {
  data: [{
    sno: 64,
    details: [{ location_id: 15, order_sno: 64, tracking_status: 'Created' }],
    tracking_status: { location_id: 19, order_sno: 64, tracking_status: 'In Transit' }
  }]
}

export const ERROR_EXAMPLE = { statusCode: 404, error: 'Not Found', message: 'x', code: 'TRACKING_NOT_FOUND' }

/**
 * Lists every difference in keys and JSON types between a value and an example
 * (arrays: each element against the example's first element). Empty means same shape.
 */
export function shapeDifferences (actual: unknown, example: unknown, path = '$'): string[] {
  const kind = (v: unknown): string => Array.isArray(v) ? 'array' : v === null ? 'null' : Number.isInteger(v) ? 'integer' : typeof v
  if (kind(actual) !== kind(example)) return [`${path}: ${kind(actual)} where the contract has ${kind(example)}`]
  if (Array.isArray(actual) && Array.isArray(example)) {
    return actual.flatMap((item, i) => shapeDifferences(item, example[0], `${path}[${i}]`))
  }
  if (kind(actual) === 'object') {
    const a = actual as Record<string, unknown>
    const e = example as Record<string, unknown>
    const missing = Object.keys(e).filter((k) => !(k in a)).map((k) => `${path}.${k}: missing`)
    const extra = Object.keys(a).filter((k) => !(k in e)).map((k) => `${path}.${k}: not in the contract`)
    return [...missing, ...extra, ...Object.keys(e).filter((k) => k in a).flatMap((k) => shapeDifferences(a[k], e[k], `${path}.${k}`))]
  }
  return []
}
