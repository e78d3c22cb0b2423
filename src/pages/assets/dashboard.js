// /dashboard: the latest report (GET /pages/latest-report.json, public and without order
// numbers) as charts with Chart.js, each with its table; the downloads for admins (GET /reports
// with the admin token, kept in sessionStorage for this tab only).
import { el, getJson, localTime, number, percent, STATUS_NAMES, STATUSES } from './common.js'

/* global Chart */
const COLORS = {
  Created: '#9aa3b2',
  'Package Received': '#6c8ebf',
  'In Transit': '#0b63c5',
  'Out for Delivery': '#00897b',
  'Delivery Attempted': '#f2a900',
  Delivered: '#1f8a4c',
  'Returned to Sender': '#8e44ad',
  Exception: '#c62828'
}
const TOKEN_KEY = 'logistics.adminToken'
const reduced = window.matchMedia('(prefers-reduced-motion: reduce)').matches

function table (headers, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, headers.map((h, i) => el('th', { scope: 'col', class: i > 0 ? 'num' : undefined }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) => i === 0 ? el('th', { scope: 'row' }, c) : el('td', { class: 'num' }, typeof c === 'number' ? number.format(c) : c))))))
}

// Chart.js (4.6) holds a resize that comes while a chart animates for the next draw; one that comes
// in the frame of an animation's last step gets none, and the canvas keeps its old width (wider
// than a phone's screen after a reflow). So each chart is fitted to its box again once an
// animation ends: a no-op when the size has not changed.
const refit = ({ chart }) => chart.resize()

function chart (id, config) {
  return new Chart(document.getElementById(id), {
    ...config,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: reduced ? false : { duration: 300, onComplete: refit },
      plugins: { legend: { display: false } },
      ...config.options
    }
  })
}

function render ({ slot, summary }) {
  const font = window.getComputedStyle(document.documentElement).fontFamily
  Chart.defaults.font.family = font
  Chart.defaults.color = '#1d2330'
  const zone = summary.timezone ?? 'Asia/Taipei'
  document.getElementById('slot').textContent = `報表時段 ${localTime(summary.slot, zone)}（${zone}）· 產生於 ${localTime(summary.created_at, zone)} · ${slot}`
  const kpi = (value, label) => el('div', { class: 'kpi' }, el('b', {}, value), el('span', {}, label))
  const transit = summary.transitHours ?? {}
  document.getElementById('kpis').replaceChildren(
    kpi(number.format(summary.totalOrders), '貨件總數'),
    kpi(percent.format(summary.rates?.delivery ?? 0), '送達率'),
    kpi(percent.format(summary.rates?.exception ?? 0), '異常率'),
    kpi(transit.p50 === null || transit.p50 === undefined ? '—' : `${transit.p50} 小時`, '運送時間中位數'),
    kpi(number.format(summary.stale?.count ?? 0), `超過 ${summary.stale?.thresholdHours ?? 48} 小時未更新`))

  const counts = STATUSES.map((s) => summary.trackingSummary?.[s] ?? 0)
  chart('status-chart', {
    type: 'bar',
    data: { labels: STATUSES.map((s) => STATUS_NAMES[s]), datasets: [{ label: '件數', data: counts, backgroundColor: STATUSES.map((s) => COLORS[s]) }] },
    options: { scales: { y: { beginAtZero: true } } }
  })
  document.getElementById('status-table').replaceChildren(table(['狀態', '件數'], STATUSES.map((s, i) => [`${STATUS_NAMES[s]} (${s})`, counts[i]])))

  const activity = summary.activity ?? {}
  const activityLabels = [['created', '新建'], ['delivered', '送達'], ['exceptions', '異常'], ['returned', '退回']]
  document.getElementById('activity-window').textContent = activity.from ? `${localTime(activity.from, zone)} – ${localTime(activity.to, zone)}` : ''
  chart('activity-chart', {
    type: 'bar',
    data: { labels: activityLabels.map(([, l]) => l), datasets: [{ label: '件數', data: activityLabels.map(([k]) => activity[k] ?? 0), backgroundColor: ['#0b63c5', '#1f8a4c', '#c62828', '#8e44ad'] }] },
    options: { scales: { y: { beginAtZero: true } } }
  })
  document.getElementById('activity-table').replaceChildren(table(['項目', '件數'], activityLabels.map(([k, l]) => [l, activity[k] ?? 0])))

  const hubs = summary.hubs ?? []
  chart('hubs-chart', {
    type: 'bar',
    data: {
      labels: hubs.map((h) => h.title),
      datasets: STATUSES.map((s) => ({ label: STATUS_NAMES[s], data: hubs.map((h) => h.byStatus?.[s] ?? 0), backgroundColor: COLORS[s] }))
    },
    options: {
      indexAxis: 'y',
      scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true, ticks: { autoSkip: false } } },
      plugins: { legend: { display: true, position: 'bottom' } }
    }
  })
  document.getElementById('hubs-table').replaceChildren(table(['物流中心', '合計', ...STATUSES.map((s) => STATUS_NAMES[s])],
    hubs.map((h) => [h.title, h.orders, ...STATUSES.map((s) => h.byStatus?.[s] ?? 0)])))

  chart('transit-chart', {
    type: 'bar',
    data: { labels: ['中位數 p50', '第 90 百分位 p90'], datasets: [{ label: '小時', data: [transit.p50 ?? 0, transit.p90 ?? 0], backgroundColor: ['#00897b', '#f2a900'] }] },
    options: { indexAxis: 'y', scales: { x: { beginAtZero: true, title: { display: true, text: '小時' } } } }
  })
  document.getElementById('transit-table').replaceChildren(table(['', '小時'], [
    ['已送達貨件', transit.deliveredOrders ?? 0], ['中位數 p50', transit.p50 ?? '—'], ['第 90 百分位 p90', transit.p90 ?? '—']]))
  document.getElementById('report').hidden = false
}

async function download (entry, token) {
  const response = await fetch(entry.url, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  if (!response.ok) throw new Error(`HTTP ${response.status}`)
  const url = URL.createObjectURL(await response.blob())
  const link = el('a', { href: url, download: entry.key.split('/').slice(1).join('-') })
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

async function showDownloads () {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? ''
  const form = document.getElementById('token-form')
  const list = document.getElementById('downloads')
  const forget = document.getElementById('forget')
  let reports
  try {
    ({ reports } = await getJson('/reports?limit=12', token ? { authorization: `Bearer ${token}` } : {}))
  } catch (err) {
    list.replaceChildren()
    form.hidden = false
    forget.hidden = token === ''
    if (token !== '') list.append(el('li', { class: 'error' }, err.status === 401 || err.status === 403 ? '權杖無效或沒有管理者權限' : `無法列出報表：${err.message}`))
    return
  }
  form.hidden = true
  forget.hidden = token === ''
  list.replaceChildren(...reports.map((entry) => {
    const button = el('button', { type: 'button', class: 'plain' }, `${entry.slot} ${entry.kind === 'summary' ? '摘要 JSON' : '訂單 CSV.gz'}`)
    button.addEventListener('click', () => download(entry, token).catch((err) => { button.textContent = `下載失敗：${err.message}` }))
    return el('li', {}, button, el('span', { class: 'muted' }, ` ${number.format(Math.ceil(entry.size / 1024))} KB`))
  }))
}

document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim())
  document.getElementById('token').value = ''
  showDownloads()
})
document.getElementById('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  showDownloads()
})

try {
  render(await getJson('/pages/latest-report.json'))
  await showDownloads()
} catch (err) {
  const box = document.getElementById('error')
  box.textContent = err.status === 404 ? '尚無報表：第一份報表會在下一個排程時段產生（npm run report 可立即產生）。' : `無法載入報表：${err.message}`
  box.hidden = false
  document.getElementById('slot').textContent = ''
}
