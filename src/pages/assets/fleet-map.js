// /fleet/map: every vehicle on the map with its status and load, live from GET /fleet/stream
// (a snapshot, then the vehicles that changed, about once a second; markers glide to their new
// place); if the stream cannot be had, GET /fleet every 2 s. Choosing a vehicle shows its track
// of the last hour and its manifest (GET /fleet/<id>).
import { el, getJson, localTime, number } from './common.js'
import { loadMap } from './map.js'

const POLL_MS = 2000
const STATUS = { enroute: '行駛中', at_hub: '在物流中心', idle: '停留', offline: '離線' }
const live = document.getElementById('live')
const errorBox = document.getElementById('error')
const tbody = document.getElementById('vehicles')
const mapReady = loadMap(document.getElementById('map'), '台灣物流中心與車輛位置地圖')
const markers = new Map()
let selected = new URLSearchParams(window.location.search).get('vehicle')

function marker (map, vehicle) {
  let node = markers.get(vehicle.id)
  if (node === undefined) {
    node = el('svg:g', { class: 'vehicle', 'data-vehicle': vehicle.id },
      el('svg:circle', { cx: 0, cy: 0, r: 7 }),
      el('svg:text', { x: 10, y: -6 }, vehicle.id))
    node.append(el('svg:title', {}, ''))
    markers.set(vehicle.id, node)
  }
  const [x, y] = map.project(vehicle.position.lat, vehicle.position.lng)
  // Set before the first insertion, so a new marker appears in place and only later moves glide.
  node.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`
  if (!node.isConnected) map.layers.vehicles.append(node)
  else if (vehicle.id === selected && node.nextSibling !== null) map.layers.vehicles.append(node) // the chosen one on top
  node.setAttribute('class', `vehicle ${vehicle.status}${vehicle.id === selected ? ' selected' : ''}`)
  node.querySelector('title').textContent = `${vehicle.name}：${STATUS[vehicle.status] ?? vehicle.status}，載貨 ${vehicle.parcels_on_board}/${vehicle.capacity}`
  return node
}

/** Today's times as HH:MM:SS, older ones with their date. */
function seen (iso) {
  const full = localTime(iso)
  return full.slice(0, 10) === localTime(new Date().toISOString()).slice(0, 10)
    ? new Date(iso).toLocaleTimeString('zh-TW', { hour12: false, timeZone: 'Asia/Taipei' })
    : full
}

function row (vehicle) {
  const hub = vehicle.hub === null ? '—' : `${vehicle.hub.relation === 'next' ? '前往 ' : ''}${vehicle.hub.title}`
  return el('tr', { class: vehicle.id === selected ? 'selected' : undefined, 'data-vehicle': vehicle.id },
    el('td', {}, el('button', { type: 'button', class: 'row', 'aria-pressed': vehicle.id === selected ? 'true' : 'false', 'aria-label': `${vehicle.id} ${vehicle.name}` }, vehicle.id), el('div', { class: 'muted' }, vehicle.name)),
    el('td', {}, el('span', { class: `dot ${vehicle.status}` }), STATUS[vehicle.status] ?? vehicle.status, el('div', { class: 'muted narrow-only' }, hub)),
    el('td', { class: 'wide-only' }, hub),
    el('td', { class: 'num' }, `${number.format(vehicle.parcels_on_board)} / ${number.format(vehicle.capacity)} `,
      el('meter', { min: 0, max: vehicle.capacity, value: vehicle.parcels_on_board, 'aria-label': `載貨 ${vehicle.parcels_on_board} / ${vehicle.capacity}` })),
    el('td', { class: 'wide-only' }, vehicle.last_seen_at === null ? '—' : seen(vehicle.last_seen_at)))
}

const vehicles = new Map()

async function draw () {
  const map = await mapReady
  const list = [...vehicles.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  for (const vehicle of list) if (vehicle.position !== null) marker(map, vehicle)
  for (const [id, node] of markers) if (vehicles.get(id)?.position == null) { node.remove(); markers.delete(id) }
  // Keep the keyboard focus on the row it was on.
  const focused = document.activeElement?.closest?.('tr')?.dataset.vehicle
  tbody.replaceChildren(...list.map(row))
  if (focused !== undefined) tbody.querySelector(`tr[data-vehicle="${window.CSS.escape(focused)}"] button`)?.focus()
  const counts = {}
  for (const v of list) counts[v.status] = (counts[v.status] ?? 0) + 1
  document.getElementById('counts').textContent = `${list.length} 輛：` +
    Object.entries(counts).map(([s, n]) => `${STATUS[s] ?? s} ${n}`).join('、')
  live.textContent = `即時 · 更新於 ${new Date().toLocaleTimeString('zh-TW', { hour12: false })}`
  live.className = 'live on'
  errorBox.hidden = true
}

function replaceAll (list) {
  vehicles.clear()
  for (const v of list) vehicles.set(v.id, v)
}

async function showDetail (map, id) {
  const detail = document.getElementById('detail')
  let vehicle
  try {
    vehicle = await getJson(`/fleet/${encodeURIComponent(id)}`)
  } catch {
    detail.hidden = true
    return
  }
  detail.hidden = false
  document.getElementById('detail-title').textContent = `${vehicle.id} ${vehicle.name}`
  document.getElementById('detail-facts').textContent = `${STATUS[vehicle.status] ?? vehicle.status} · 載貨 ${vehicle.parcels_on_board}/${vehicle.capacity} · 近一小時軌跡 ${vehicle.track.points.length} 點`
  document.getElementById('manifest').replaceChildren(...vehicle.manifest.map((p) =>
    el('li', {}, el('a', { href: `/track?sno=${p.sno}` }, `貨件 ${p.sno}`), ` ${p.status ?? ''}`)))
  const points = vehicle.track.points.map((p) => map.project(p.lat, p.lng).map((n) => n.toFixed(1)).join(',')).join(' ')
  map.layers.route.replaceChildren(el('svg:polyline', { class: 'track', points }))
}

tbody.addEventListener('click', async (event) => {
  const id = event.target.closest('tr')?.dataset.vehicle
  if (id === undefined) return
  selected = selected === id ? null : id
  window.history.replaceState(null, '', selected === null ? '/fleet/map' : `/fleet/map?vehicle=${encodeURIComponent(selected)}`)
  const map = await mapReady
  await draw()
  if (selected === null) { map.layers.route.replaceChildren(); document.getElementById('detail').hidden = true } else await showDetail(map, selected)
})

function offline (message) {
  live.textContent = '連線中斷，重試中…'
  live.className = 'live off'
  if (message !== undefined) {
    errorBox.textContent = `無法取得車隊資料：${message}`
    errorBox.hidden = false
  }
}

// The fallback: GET /fleet every 2 s.
async function poll () {
  try {
    replaceAll((await getJson('/fleet')).vehicles)
    await draw()
    if (selected !== null) await showDetail(await mapReady, selected)
  } catch (err) {
    offline(err.message)
  }
  setTimeout(poll, POLL_MS)
}

const stream = new window.EventSource('/fleet/stream')
stream.addEventListener('snapshot', async (e) => {
  replaceAll(JSON.parse(e.data).vehicles)
  await draw()
  if (selected !== null) await showDetail(await mapReady, selected)
})
stream.addEventListener('change', async (e) => {
  const change = JSON.parse(e.data)
  for (const v of change.vehicles) vehicles.set(v.id, v)
  for (const id of change.removed) vehicles.delete(id)
  await draw()
  if (selected !== null && change.vehicles.some((v) => v.id === selected)) await showDetail(await mapReady, selected)
})
stream.addEventListener('error', () => {
  if (stream.readyState === window.EventSource.CLOSED) poll() // refused (limits, no database): poll instead
  else offline()
})
