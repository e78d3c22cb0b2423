const EARTH_RADIUS_M = 6_371_008.8
const RAD = Math.PI / 180

/** Great-circle distance in metres (haversine; well under a metre off at geofence scales). */
export function distanceM (lat1: number, lng1: number, lat2: number, lng2: number): number {
  const dLat = (lat2 - lat1) * RAD
  const dLng = (lng2 - lng1) * RAD
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLng / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)))
}

/** The point `distance` metres from (lat, lng) towards `bearing` degrees (for tests and the simulator). */
export function offsetM (lat: number, lng: number, distance: number, bearing: number): { lat: number, lng: number } {
  const d = distance / EARTH_RADIUS_M
  const b = bearing * RAD
  const la1 = lat * RAD
  const la2 = Math.asin(Math.sin(la1) * Math.cos(d) + Math.cos(la1) * Math.sin(d) * Math.cos(b))
  const lo2 = lng * RAD + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(la1), Math.cos(d) - Math.sin(la1) * Math.sin(la2))
  return { lat: la2 / RAD, lng: lo2 / RAD }
}
