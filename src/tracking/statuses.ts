/** The eight statuses, spelled exactly as clients and reports expect them. */
export const TRACKING_STATUSES = [
  'Created',
  'Package Received',
  'In Transit',
  'Out for Delivery',
  'Delivery Attempted',
  'Delivered',
  'Returned to Sender',
  'Exception'
] as const

export type TrackingStatus = typeof TRACKING_STATUSES[number]

/** Statuses after which a parcel does not move any more. */
export const FINAL_STATUSES: readonly TrackingStatus[] = ['Delivered', 'Returned to Sender', 'Exception']
