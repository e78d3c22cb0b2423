import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { SseClient } from '../helpers/sse.js'
import { startNginx, writeNginxConfig } from '../helpers/nginx.js'
import { freePort } from '../helpers/redis.js'
import { TestS3 } from '../helpers/s3.js'
import { createLogger } from '../../src/logger.js'
import { createS3Client, ensureBucket } from '../../src/infra/s3.js'
import { ReportRunner } from '../../src/reports/runner.js'
import { ReportSchedule } from '../../src/reports/slots.js'
import { bulkLoadOrders } from '../../src/orders/bulk.js'
import { offsetM } from '../../src/fleet/geo.js'
import { PAGE_CSP } from '../../src/pages/routes.js'

/**
 * The pages in a real browser (Debian's Chromium, driven by playwright-core) against the API on
 * a real port: /track with a live update, /fleet/map with a vehicle moving, /dashboard with a
 * report and the admin downloads. No request may leave 127.0.0.1. Screenshots go to
 * .tap/screenshots/pages/; with UPDATE_SCREENSHOTS=1 the set in docs/screenshots/ is replaced.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium fonts-noto-cjk (.ci/run does)`)

const token = 'pages-admin-token-0123456789'
const auth = { authorization: `Bearer ${token}` }
const bucket = 'pages-reports'
const s3server = await TestS3.start(t)
const { app, config, database } = await buildTestApp(t, 'pages', { ...s3server.env(bucket), ADMIN_TOKEN: token, GEOFENCE_DWELL_S: '5' })
const db = database.db
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const origin = new URL(base).origin
const outDir = path.resolve('.tap/screenshots/pages')
await mkdir(outDir, { recursive: true })
const docsDir = path.resolve('docs/screenshots')

const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
t.teardown(async () => await browser.close())

/** A page that records every request, console error and script error. */
async function open (t: Test, viewport = { width: 1280, height: 900 }): Promise<{ page: Page, requests: string[], problems: string[] }> {
  const context = await browser.newContext({ viewport, locale: 'zh-TW', timezoneId: 'Asia/Taipei', acceptDownloads: true })
  t.teardown(async () => await context.close())
  const page = await context.newPage()
  const requests: string[] = []
  const problems: string[] = []
  page.on('request', (request) => requests.push(request.url()))
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (message) => {
    // The browser logs the API's 401 (GET /reports without a token) and 404 (an unknown parcel) itself.
    if (message.type() === 'error' && !/status of 40[14]/.test(message.text())) problems.push(`console: ${message.text()}`)
  })
  return { page, requests, problems }
}

function stayedLocal (t: Test, requests: string[]): void {
  const away = requests.filter((url) => !url.startsWith(origin + '/') && !url.startsWith('data:') && !url.startsWith('blob:' + origin))
  t.same(away, [], `all ${requests.length} requests went to ${origin}`)
}

async function screenshot (page: Page, name: string, docs = false): Promise<void> {
  const file = path.join(outDir, name)
  await page.screenshot({ path: file, fullPage: true })
  if (docs && process.env.UPDATE_SCREENSHOTS === '1') {
    await mkdir(docsDir, { recursive: true })
    await copyFile(file, path.join(docsDir, name))
  }
}

const ago = (ms: number): Date => new Date(Date.now() - ms)

t.test('the pages and their assets carry the page policy; anything else does not exist', async (t) => {
  for (const url of ['/track', '/fleet/map', '/dashboard']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^text\/html/)
    t.equal(res.headers['content-security-policy'], PAGE_CSP)
  }
  const css = await app.inject({ url: '/pages/assets/pages.css', headers: { 'accept-encoding': 'gzip' } })
  t.equal(css.headers['content-encoding'], 'gzip')
  t.equal((await app.inject({ url: '/pages/assets/pages.css', headers: { 'if-none-match': css.headers.etag as string } })).statusCode, 304)
  t.equal((await app.inject('/pages/assets/chart.umd.min.js')).statusCode, 200)
  for (const name of ['..%2Fpackage.json', 'routes.ts', 'track.html', 'x.js']) {
    t.equal((await app.inject(`/pages/assets/${name}`)).statusCode, 404, name)
  }
  const map = (await app.inject('/pages/map.json')).json()
  t.equal(map.hubs.length, 16)
  t.ok(map.outline.length > 1000 && map.outline.length < 40_000, `outline ${map.outline.length} characters`)
  t.ok(map.hubs.every((h: { x: number, y: number }) => h.x > 0 && h.x < map.width && h.y > 0 && h.y < map.height), 'every hub is on the map')
  t.equal((await app.inject('/health')).headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", 'the API keeps its own policy')
})

t.test('/track: look a parcel up from the keyboard, see its route, and a new event arrive live', async (t) => {
  const { sno } = await insertKnownOrder(db, {
    recipient: { name: '陳美麗', address: '台北市信義區松仁路100號', phone: '0912345678' },
    estimatedDelivery: new Date().toISOString().slice(0, 10),
    events: [
      { status: 'Created', locationId: 1, at: ago(30 * 3_600_000).toISOString() },
      { status: 'Package Received', locationId: 1, at: ago(29 * 3_600_000).toISOString() },
      { status: 'In Transit', locationId: 6, at: ago(20 * 3_600_000).toISOString() },
      { status: 'In Transit', locationId: 7, at: ago(10 * 3_600_000).toISOString() }
    ]
  })
  const { page, requests, problems } = await open(t)
  await page.goto(`${base}/track`)
  t.ok(await page.evaluate("document.activeElement?.id === 'sno'"), 'the input has the focus')
  await page.keyboard.type(String(sno))
  await page.keyboard.press('Enter')
  await page.locator('#timeline li').nth(3).waitFor({ timeout: 15_000 })
  t.equal(new URL(page.url()).search, `?sno=${sno}`, 'the URL names the parcel')
  t.match(await page.locator('#parcel-status').innerText(), /運送中/)
  t.match(await page.locator('#parcel-location').innerText(), /台北物流中心/)
  t.equal(await page.locator('.map .route').getAttribute('points').then((p) => p?.split(' ').length), 3, 'route: 花蓮 → 宜蘭 → 台北')
  t.equal(await page.locator('.map .hub.current').getAttribute('data-hub'), '7')
  await page.locator('#live.on').waitFor({ timeout: 15_000 })

  await page.evaluate('window.marker = 42')
  const results = await app.writer.applyEvents([{ event_id: 'pages-live-1', sno, status: 'Out for Delivery', location_id: 3, occurred_at: ago(1000) }])
  t.equal(results[0].result, 'accepted')
  await page.locator('#timeline li').nth(4).waitFor({ timeout: 20_000 })
  t.match(await page.locator('#timeline li.new').innerText(), /配送中[\s\S]*桃園物流中心/, 'the new event is at the top, marked')
  t.match(await page.locator('#parcel-status').innerText(), /配送中/)
  t.equal(await page.locator('.map .hub.current').getAttribute('data-hub'), '3', 'the map moved the parcel')
  t.equal(await page.evaluate('window.marker'), 42, 'no reload')
  await screenshot(page, 'track.png', true)

  // Unknown and malformed numbers are answered on the page.
  await page.fill('#sno', '999999')
  await page.press('#sno', 'Enter')
  await page.locator('#error:not([hidden])').waitFor({ timeout: 10_000 })
  t.match(await page.locator('#error').innerText(), /查無貨件 999999/)

  stayedLocal(t, requests)
  t.same(problems, [], 'no script or policy errors')
})

t.test('/track on a phone: nothing wider than the screen', async (t) => {
  const { sno } = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 4, at: ago(3_600_000).toISOString() }] })
  const { page, requests, problems } = await open(t, { width: 390, height: 844 })
  await page.goto(`${base}/track?sno=${sno}`)
  await page.locator('#timeline li').first().waitFor({ timeout: 15_000 })
  await fitsTheScreen(t, page, 'no horizontal scrolling')
  await screenshot(page, 'track-phone.png')
  stayedLocal(t, requests)
  t.same(problems, [])
})

/**
 * Waits (up to 30 s: the page reflows and its charts redraw for the new width) until nothing is
 * wider than the screen; when something still is, the assertion names what sticks out.
 */
async function fitsTheScreen (t: Test, page: Page, message: string): Promise<void> {
  const fits = async (): Promise<boolean> => await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth') === true
  if (await eventually(fits, 30_000)) {
    t.pass(message)
    return
  }
  const wide = await page.evaluate(`[...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 12)
    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().width) + 'px' + (e.tagName === 'CANVAS' ? ' (style ' + e.style.width + ')' : ''))`)
  t.fail(message, { innerWidth: await page.evaluate('window.innerWidth'), scrollWidth: await page.evaluate('document.documentElement.scrollWidth'), wide })
}

async function fix (id: string, lat: number, lng: number, at: Date, speed: number): Promise<void> {
  const res = await app.inject({ method: 'POST', url: `/vehicles/${id}/positions`, headers: auth, payload: { lat, lng, ts: at.toISOString(), speed, accuracy: 10 } })
  if (res.statusCode !== 200) throw new Error(res.body)
}

t.test('/fleet/map: vehicles with their status and load, moving without a reload', async (t) => {
  const hubs = new Map((await db.selectFrom('locations').selectAll().execute()).map((h) => [h.id, { lat: Number(h.lat), lng: Number(h.lng), title: h.title }]))
  const vehicles: Array<[string, string, number]> = [['TPE-01', '台北 1 號車', 7], ['TYN-01', '桃園 1 號車', 3], ['HUN-01', '花蓮 1 號車', 1], ['TNN-01', '台南 1 號車', 4], ['PEN-01', '澎湖 1 號車', 8]]
  for (const [id, name, home] of vehicles) {
    const res = await app.inject({ method: 'POST', url: '/vehicles', headers: auth, payload: { id, name, capacity: 20, home_location_id: home } })
    t.equal(res.statusCode, 201, id)
  }
  // TPE-01 between 台北 and 桃園 at 60 km/h with 3 parcels; TYN-01 parked at 桃園 (arrived);
  // HUN-01 stopped on the road; TNN-01 silent for 20 minutes; PEN-01 on its way out of 澎湖.
  const snos = []
  for (let i = 0; i < 3; i++) snos.push((await insertKnownOrder(db, { events: [{ status: 'Created', locationId: 7, at: ago(3_600_000).toISOString() }] })).sno)
  t.equal((await app.inject({ method: 'POST', url: '/vehicles/TPE-01/load', headers: auth, payload: { snos, location_id: 7, occurred_at: ago(600_000).toISOString() } })).statusCode, 200)
  const tpe = hubs.get(7)!
  const tyn = hubs.get(3)!
  const between = (f: number): [number, number] => [tpe.lat + (tyn.lat - tpe.lat) * f, tpe.lng + (tyn.lng - tpe.lng) * f]
  await fix('TPE-01', ...between(0.3), ago(40_000), 60)
  await fix('TPE-01', ...between(0.35), ago(20_000), 60)
  await fix('TYN-01', tyn.lat, tyn.lng, ago(30_000), 0)
  await fix('TYN-01', tyn.lat + 0.0002, tyn.lng, ago(10_000), 0)
  const road = offsetM(hubs.get(1)!.lat, hubs.get(1)!.lng, 15_000, 200)
  await fix('HUN-01', road.lat, road.lng, ago(15_000), 0)
  await fix('TNN-01', hubs.get(4)!.lat + 0.05, hubs.get(4)!.lng + 0.05, ago(20 * 60_000), 40)
  const pen = offsetM(hubs.get(8)!.lat, hubs.get(8)!.lng, 5000, 60)
  await fix('PEN-01', pen.lat, pen.lng, ago(15_000), 35)

  const { page, requests, problems } = await open(t)
  await page.goto(`${base}/fleet/map`)
  await page.locator('#vehicles tr').nth(4).waitFor({ timeout: 15_000 })
  const status = async (id: string): Promise<string | null> => await page.locator(`.map .vehicle[data-vehicle="${id}"]`).getAttribute('class')
  t.match(await status('TPE-01'), /enroute/)
  t.match(await status('TYN-01'), /at_hub/)
  t.match(await status('HUN-01'), /idle/)
  t.match(await status('TNN-01'), /offline/)
  t.match(await page.locator('#vehicles tr[data-vehicle="TPE-01"]').innerText(), /3 \/ 20/, 'its load')
  t.match(await page.locator('#vehicles tr[data-vehicle="TYN-01"]').innerText(), /在物流中心[\s\S]*桃園物流中心/)

  // Keyboard: Tab to the first vehicle's button, Enter shows its track and manifest.
  await page.locator('#vehicles tr[data-vehicle="TPE-01"] button').focus()
  await page.keyboard.press('Enter')
  await page.locator('#manifest li').nth(2).waitFor({ timeout: 10_000 })
  t.match(await page.locator('#detail-title').innerText(), /TPE-01 台北 1 號車/)

  const before = await page.locator('.map .vehicle[data-vehicle="TPE-01"]').evaluate((e) => (e as unknown as { style: { transform: string } }).style.transform)
  await page.evaluate('window.marker = 7')
  await fix('TPE-01', ...between(0.6), ago(1000), 60)
  const moved = await eventually(async () => await page.locator('.map .vehicle[data-vehicle="TPE-01"]').evaluate((e) => (e as unknown as { style: { transform: string } }).style.transform) !== before, 20_000)
  t.ok(moved, 'the marker moved')
  t.equal(await page.evaluate('window.marker'), 7, 'no reload')
  await page.waitForTimeout(2100) // let the marker's 1.8 s glide end before the picture (not a wait for an event)
  await screenshot(page, 'fleet-map.png', true)
  await page.setViewportSize({ width: 390, height: 844 })
  await fitsTheScreen(t, page, 'on a phone: no horizontal scrolling')
  await screenshot(page, 'fleet-map-phone.png')
  t.ok(requests.some((url) => url === `${origin}/fleet/stream`), 'live from GET /fleet/stream')
  t.equal(requests.filter((url) => url === `${origin}/fleet`).length, 0, 'no polling while the stream works')
  stayedLocal(t, requests)
  t.same(problems, [])
})

t.test('GET /fleet/stream: a snapshot, then only the vehicles that changed', async (t) => {
  const first = new SseClient(`${base}/fleet/stream`)
  t.teardown(() => first.close())
  t.ok(await first.waitFor((c) => c.events.some((e) => e.event === 'snapshot'), 15_000), 'snapshot')
  t.match(first.headers['content-type'], /^text\/event-stream/)
  const snapshot = JSON.parse(first.events[0].data)
  t.same(snapshot.vehicles.map((v: { id: string }) => v.id), ['HUN-01', 'PEN-01', 'TNN-01', 'TPE-01', 'TYN-01'])

  const hun = snapshot.vehicles.find((v: { id: string }) => v.id === 'HUN-01')
  await fix('HUN-01', hun.position.lat + 0.01, hun.position.lng, ago(500), 30)
  t.ok(await first.waitFor((c) => c.events.some((e) => e.event === 'change' && e.data.includes('HUN-01')), 15_000), 'a change event')
  const change = JSON.parse(first.events.find((e) => e.event === 'change' && e.data.includes('HUN-01'))!.data)
  t.same(change.vehicles.map((v: { id: string }) => v.id), ['HUN-01'], 'only the vehicle that moved')
  t.equal(change.vehicles[0].status, 'enroute')
  t.same(change.removed, [])

  const second = new SseClient(`${base}/fleet/stream`)
  t.teardown(() => second.close())
  t.ok(await second.waitFor((c) => c.events.length > 0, 15_000))
  const later = JSON.parse(second.events[0].data).vehicles.find((v: { id: string }) => v.id === 'HUN-01')
  t.equal(later.position.lat, change.vehicles[0].position.lat, 'a new stream starts from the current fleet')
})

t.test('/dashboard: the latest report as charts for everyone, downloads with the admin token', async (t) => {
  const s3 = createS3Client(config.s3)
  t.teardown(() => s3.destroy())
  await ensureBucket(s3, bucket)
  await bulkLoadOrders(db, { count: 400, seed: 7 })
  const schedule = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const runner = new ReportRunner({ db, s3, bucket, redis: undefined, schedule, logger: createLogger('silent') })
  await runner.run(schedule.latest(ago(8 * 3_600_000)))
  await runner.run(schedule.latest(new Date()))

  const latest = await app.inject('/pages/latest-report.json')
  t.equal(latest.statusCode, 200)
  const body = latest.json()
  t.ok(body.summary.totalOrders >= 400)
  t.equal(body.summary.stale.oldest, undefined, 'no order numbers in the public summary')
  t.notMatch(latest.body, /"sno"/)

  const { page, requests, problems } = await open(t)
  await page.goto(`${base}/dashboard`)
  await page.locator('#report:not([hidden])').waitFor({ timeout: 15_000 })
  await page.waitForFunction("['status-chart', 'activity-chart', 'hubs-chart', 'transit-chart'].every((id) => window.Chart?.getChart(id) !== undefined)", undefined, { timeout: 15_000 })
  t.match(await page.locator('#kpis').innerText(), new RegExp(new Intl.NumberFormat('zh-TW').format(body.summary.totalOrders)))
  t.equal(await page.locator('#hubs-table tbody tr').count(), body.summary.hubs.length, 'a table row per hub')
  t.ok(await page.locator('#token-form').isVisible(), 'without a token: the token form, no downloads')
  t.equal(await page.locator('#downloads li').count(), 0)

  await page.fill('#token', token)
  await page.press('#token', 'Enter')
  await page.locator('#downloads li').first().waitFor({ timeout: 10_000 })
  t.equal(await page.locator('#downloads li').count(), 4, 'two slots, two files each')
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.locator('#downloads li button').first().click()])
  t.match(download.suggestedFilename(), /^\d{4}-\d{2}-\d{2}-\d{4}-summary\.json$/)
  t.equal(await page.evaluate("window.sessionStorage.getItem('logistics.adminToken')"), token, 'kept for this tab only')
  await page.waitForTimeout(400) // the charts' 300 ms animation ends before the picture
  await screenshot(page, 'dashboard.png', true)
  await page.setViewportSize({ width: 390, height: 844 })
  await fitsTheScreen(t, page, 'on a phone: no horizontal scrolling')
  await page.waitForTimeout(400) // the charts redraw for the new width
  await screenshot(page, 'dashboard-phone.png')

  // Chart.js holds a resize that comes while the chart animates until the next draw. One that
  // comes in the frame of an animation's last step has no next draw, and the canvas kept its old
  // width: on a busy machine, where a hover's animation can start and end between two frames as
  // the page reflows for a phone, the dashboard stayed wider than the screen. The page fits its
  // charts to their boxes again when an animation ends. Made to happen here: the box narrows on
  // one step, and the clock jumps so that the next step, in the frame where the chart hears of the
  // new width, is the last.
  await page.evaluate(`new Promise((resolve) => {
    const chart = Chart.getChart('status-chart')
    const realNow = window.realNow = Date.now
    let narrowed = false
    chart.options.animation.onProgress = () => {
      if (narrowed) return
      narrowed = true
      chart.canvas.parentNode.style.width = '200px'
      Date.now = () => realNow() + 60000
      resolve()
    }
    chart.data.datasets[0].data = chart.data.datasets[0].data.map((n) => n + 1)
    chart.update()
  })`)
  t.ok(await eventually(async () => await page.evaluate("Chart.getChart('status-chart').canvas.getBoundingClientRect().width <= 200.5") === true, 30_000),
    'a resize on an animation\'s last step still fits the chart to its box')
  await page.evaluate('Date.now = window.realNow')
  stayedLocal(t, requests)
  t.same(problems, [])
})

t.test('behind the shipped nginx site: pages with their policy, the map live through the fleet stream', async (t) => {
  const nginxPort = await freePort()
  const { dir, conf } = await writeNginxConfig(t, nginxPort, Number(new URL(base).port))
  await startNginx(t, conf, dir)
  const front = `http://127.0.0.1:${nginxPort}`
  t.ok(await eventually(async () => (await fetch(`${front}/`).catch(() => null))?.status === 200, 10_000), 'nginx is up')
  const page = await fetch(`${front}/track`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-security-policy'), PAGE_CSP)
  t.equal(page.headers.get('content-encoding'), 'gzip')

  const stream = new SseClient(`${front}/fleet/stream`)
  t.teardown(() => stream.close())
  t.ok(await stream.waitFor((c) => c.events.some((e) => e.event === 'snapshot'), 15_000), 'snapshot through nginx')
  const { page: browserPage, requests, problems } = await open(t)
  await browserPage.goto(`${front}/fleet/map`)
  await browserPage.locator('.map .vehicle[data-vehicle="PEN-01"]').waitFor({ timeout: 15_000 })
  const before = await browserPage.locator('.map .vehicle[data-vehicle="PEN-01"]').evaluate((e) => (e as unknown as { style: { transform: string } }).style.transform)
  const pen = JSON.parse(stream.events[0].data).vehicles.find((v: { id: string }) => v.id === 'PEN-01')
  await fix('PEN-01', pen.position.lat + 0.02, pen.position.lng + 0.02, ago(500), 35)
  t.ok(await stream.waitFor((c) => c.events.some((e) => e.event === 'change' && e.data.includes('PEN-01')), 15_000), 'the change through nginx, unbuffered')
  t.ok(await eventually(async () => await browserPage.locator('.map .vehicle[data-vehicle="PEN-01"]').evaluate((e) => (e as unknown as { style: { transform: string } }).style.transform) !== before, 20_000), 'the marker moved')
  t.same(requests.filter((url) => !url.startsWith(front + '/') && !url.startsWith('data:')), [], 'every request went to nginx')
  t.same(problems, [])
})
