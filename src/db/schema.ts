import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'
import type { TrackingStatus } from '../tracking/statuses.js'

/** DATETIME(3) columns, always UTC; written as Date, read back as Date. */
type Timestamp = ColumnType<Date, Date | undefined, Date>
/** DATE columns travel as 'YYYY-MM-DD' strings (the pool reads DATE as a string). */
type CalendarDate = ColumnType<string, string, string>

export interface LocationTable {
  id: number
  title: string
  city: string
  address: string
  lat: number
  lng: number
  timezone: string
  created_at: Generated<Date>
  updated_at: Generated<Date>
}

export interface RecipientTable {
  id: Generated<number>
  name: string
  address: string
  phone: string
  created_at: Timestamp
  updated_at: Timestamp
}

export interface OrderTable {
  sno: Generated<number>
  recipient_id: number
  /** Status and hub of the newest event, kept in step with it on every write. */
  status: TrackingStatus
  location_id: number
  estimated_delivery: CalendarDate
  /** When the order was created (the time of its `Created` event). */
  created_at: Date
  /** Time of the newest event. */
  last_event_at: Date
  /** Time of the event that set `status` (see src/writes/status-rule.ts). */
  status_at: Date
  /** Committed changes of this order so far (the `seq` of its newest change_log row). */
  change_seq: Generated<number>
  sender_location_id: number | null
  receiver_location_id: number | null
  reference: string | null
  updated_at: Timestamp
}

export interface TrackingEventTable {
  id: Generated<number>
  order_sno: number
  status: TrackingStatus
  location_id: number
  occurred_at: Date
  /** The id the source gave the event (unique per parcel); null for generated demo events. */
  event_id: string | null
  vehicle_id: string | null
  created_at: Timestamp
}

export interface ChangeLogTable {
  id: Generated<number>
  sno: number
  /** Per-order sequence: 1 for the order's creation, then one more per change. */
  seq: number
  kind: string
  /** JSON. */
  payload: string
  created_at: Timestamp
}

export interface ChangeRelayTable {
  name: string
  last_id: number
  updated_at: Timestamp
}

export interface IdempotencyKeyTable {
  scope: string
  idem_key: string
  request_hash: string
  status_code: number | null
  response: string | null
  created_at: Timestamp
}

/** A vehicle, with its newest accepted fix (src/fleet/). */
export interface VehicleTable {
  id: string
  name: string
  capacity: number
  home_location_id: number
  lat: number | null
  lng: number | null
  speed: number | null
  heading: number | null
  accuracy: number | null
  /** Time of the newest fix (the device's clock); older fixes decide nothing. */
  fix_at: Date | null
  /** When that fix was received. */
  seen_at: Date | null
  created_at: Generated<Date>
  updated_at: Generated<Date>
}

/** The manifest: which parcel is on which vehicle (a parcel is on at most one). */
export interface VehicleParcelTable {
  sno: number
  vehicle_id: string
  location_id: number
  loaded_at: Date
}

/** The track, for playback (kept FLEET_TRACK_RETENTION_DAYS). */
export interface VehiclePositionTable {
  vehicle_id: string
  fix_at: Date
  lat: number
  lng: number
  speed: number | null
  heading: number | null
  accuracy: number | null
  received_at: Date
}

export interface HubGeofenceTable {
  location_id: number
  radius_m: number
}

/** A vehicle near a hub: dwelling (not yet arrived) or inside (arrived); no row: outside. */
export interface GeofenceStateTable {
  vehicle_id: string
  location_id: number
  state: 'dwelling' | 'inside'
  since: Date
}

export interface FleetCounterTable {
  name: string
  count: number
}

export interface Database {
  locations: LocationTable
  recipients: RecipientTable
  orders: OrderTable
  tracking_events: TrackingEventTable
  change_log: ChangeLogTable
  change_relay: ChangeRelayTable
  idempotency_keys: IdempotencyKeyTable
  vehicles: VehicleTable
  vehicle_parcels: VehicleParcelTable
  vehicle_positions: VehiclePositionTable
  hub_geofences: HubGeofenceTable
  geofence_states: GeofenceStateTable
  fleet_counters: FleetCounterTable
}

export type Location = Selectable<LocationTable>
export type NewLocation = Insertable<LocationTable>
export type NewRecipient = Insertable<RecipientTable>
export type NewOrder = Insertable<OrderTable>
export type NewTrackingEvent = Insertable<TrackingEventTable>
