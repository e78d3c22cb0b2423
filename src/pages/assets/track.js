// /track: look a parcel up, show its timeline and its route over the hubs, and follow it live
// through GET /query/stream (snapshot, then one change event per committed change).
import { el, getJson, localTime, statusBadge, STATUS_NAMES } from './common.js'
import { loadMap } from './map.js'

const form = document.getElementById('lookup')
const input = document.getElementById('sno')
const live = document.getElementById('live')
const errorBox = document.getElementById('error')
const result = document.getElementById('result')
const mapReady = loadMap(document.getElementById('map'), '台灣物流中心地圖與貨件路線')

let source
let current
let generation = 0

function setLive (text, on) {
  live.textContent = text
  live.className = `live ${on ? 'on' : 'off'}`
}

function showError (message) {
  errorBox.textContent = message
  errorBox.hidden = message === ''
}

async function render (body, highlight) {
  current = body
  const map = await mapReady
  const zoneOf = (id) => map.hubs.get(id)?.timezone ?? 'Asia/Taipei'
  result.hidden = false
  document.getElementById('parcel-sno').textContent = body.sno
  document.getElementById('parcel-status').replaceChildren(statusBadge(body.tracking_status))
  document.getElementById('parcel-location').textContent = body.current_location?.title ?? '—'
  document.getElementById('parcel-eta').textContent = body.estimated_delivery ?? '—'
  document.getElementById('parcel-recipient').textContent = body.recipient?.name ?? '—'
  const items = [...body.details].reverse().map((d) => el('li', { class: highlight?.(d) ? 'new' : undefined },
    el('time', { datetime: d.time }, localTime(d.time, zoneOf(d.location_id))),
    el('div', {}, statusBadge(d.status), ' ', d.location_title ?? map.hubs.get(d.location_id)?.title ?? `#${d.location_id}`)))
  document.getElementById('timeline').replaceChildren(...items)

  // The route: the hubs of the timeline in time order, each stop once in a row.
  const stops = []
  for (const d of body.details) if (stops[stops.length - 1] !== d.location_id) stops.push(d.location_id)
  const points = stops.map((id) => map.hubs.get(id)).filter(Boolean)
  map.layers.route.replaceChildren(el('svg:polyline', { class: 'route', points: points.map((h) => `${h.x},${h.y}`).join(' ') }))
  for (const hub of map.hubs.values()) {
    hub.node.classList.toggle('on-route', stops.includes(hub.id))
    hub.node.classList.toggle('current', hub.id === body.current_location?.location_id)
  }
}

const sameEvent = (d, change) => d.status === change.status && d.location_id === change.location_id &&
  Date.parse(d.time) === Date.parse(change.occurred_at)

async function onChange (change, mine) {
  const map = await mapReady
  let body
  try {
    body = await getJson(`/query?sno=${encodeURIComponent(change.sno)}`)
  } catch {
    body = structuredClone(current)
  }
  if (mine !== generation) return
  if (change.kind === 'tracking.event' && !body.details.some((d) => sameEvent(d, change))) {
    // The answer came from before the change: show the change itself.
    const hub = map.hubs.get(change.location_id)
    body.details.push({ status: change.status, location_id: change.location_id, location_title: hub?.title, time: change.occurred_at })
    body.details.sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    body.tracking_status = change.tracking_status ?? body.tracking_status
    const now = map.hubs.get(change.current_location_id)
    if (now !== undefined) body.current_location = { location_id: now.id, title: now.title }
  }
  await render(body, (d) => change.kind === 'tracking.event' && sameEvent(d, change))
  setLive(`即時更新中 · ${STATUS_NAMES[change.status] ?? change.status ?? ''} @ ${map.hubs.get(change.location_id)?.title ?? ''}`.trim(), true)
}

async function lookup (sno) {
  const mine = ++generation
  source?.close()
  source = undefined
  showError('')
  setLive('查詢中…', false)
  try {
    await render(await getJson(`/query?sno=${encodeURIComponent(sno)}`))
  } catch (err) {
    if (mine !== generation) return
    result.hidden = true
    setLive('尚未查詢', false)
    showError(err.status === 404 ? `查無貨件 ${sno}` : err.status === 400 ? '請輸入正確的貨件編號（正整數）' : `查詢失敗：${err.message}`)
    return
  }
  if (mine !== generation) return
  const stream = new window.EventSource(`/query/stream?sno=${encodeURIComponent(sno)}`)
  source = stream
  // Live from the snapshot on: every change after it comes as a change event.
  stream.addEventListener('snapshot', (e) => {
    if (mine !== generation) return
    render(JSON.parse(e.data))
    setLive('即時更新中', true)
  })
  stream.addEventListener('change', (e) => { if (mine === generation) onChange(JSON.parse(e.data), mine) })
  stream.addEventListener('error', () => {
    if (mine !== generation) return
    setLive(stream.readyState === window.EventSource.CLOSED ? '即時更新已停止' : '重新連線中…', false)
  })
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const sno = input.value.trim()
  if (!/^\d{1,16}$/.test(sno)) {
    showError('請輸入正確的貨件編號（正整數）')
    input.focus()
    return
  }
  window.history.pushState({ sno }, '', `/track?sno=${sno}`)
  lookup(sno)
})
window.addEventListener('popstate', () => {
  const sno = new URLSearchParams(window.location.search).get('sno')
  if (sno) { input.value = sno; lookup(sno) }
})
const initial = new URLSearchParams(window.location.search).get('sno')
if (initial) {
  input.value = initial
  lookup(initial)
} else {
  input.focus()
}
