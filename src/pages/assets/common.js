// Shared by the pages: element building (no innerHTML: names come from the database), JSON
// fetching and the status names.

/** Status → its name on the pages (the API's English status stays visible next to it). */
export const STATUS_NAMES = {
  Created: '已建立',
  'Package Received': '已收件',
  'In Transit': '運送中',
  'Out for Delivery': '配送中',
  'Delivery Attempted': '投遞未成功',
  Delivered: '已送達',
  'Returned to Sender': '已退回寄件人',
  Exception: '異常'
}
export const STATUSES = Object.keys(STATUS_NAMES)
export const FINAL_STATUSES = new Set(['Delivered', 'Returned to Sender'])

/** An element with attributes and children (strings become text nodes). */
export function el (tag, attributes = {}, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue
    node.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child)
  }
  return node
}

export class HttpError extends Error {
  constructor (status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.code
  }
}

export async function getJson (url, headers = {}) {
  const response = await fetch(url, { headers: { accept: 'application/json', ...headers } })
  const body = await response.json().catch(() => undefined)
  if (!response.ok) throw new HttpError(response.status, body)
  return body
}

/** A status badge: the Chinese name, with the API's status for those who know it. */
export function statusBadge (status) {
  const kind = FINAL_STATUSES.has(status) ? 'status final' : status === 'Exception' ? 'status bad' : 'status'
  return el('span', { class: kind, title: status }, `${STATUS_NAMES[status] ?? status}`, el('span', { class: 'muted' }, ` ${status}`))
}

const formatters = new Map()
/** "2026-11-30 02:07" in the given zone (the hub's). */
export function localTime (iso, timeZone = 'Asia/Taipei') {
  let format = formatters.get(timeZone)
  if (format === undefined) {
    format = new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false })
    formatters.set(timeZone, format)
  }
  return format.format(new Date(iso))
}

export const number = new Intl.NumberFormat('zh-TW')
export const percent = new Intl.NumberFormat('zh-TW', { style: 'percent', maximumFractionDigits: 1 })
