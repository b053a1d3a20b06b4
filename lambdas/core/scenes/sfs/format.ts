/**
 * The Sensor Fusion Scene (.sfs) container ("binary JSON"):
 *
 *   [UTF-8 JSON header][spaces up to a multiple of 4 bytes][binary section: 4 zero bytes, then item bytes]
 *
 * The header ends at the first zero byte. Typed arrays and byte strings are replaced by "" in the JSON and listed
 * in header.$items as { keys, offset, length, dtype, shape }: `keys` is the path to the value, `offset` counts
 * from the start of the binary section (so the first item is at offset >= 4) and `length` is in bytes.
 */
export const SFS_BINARY_MARKER_BYTES = 4;

/** Typed-array element types this product writes and accepts, with their element size in bytes. */
export const SFS_DTYPES = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
  bytes: 1,
} as const;

export type SfsDtype = keyof typeof SFS_DTYPES;

export type SfsKeyPath = Array<string | number>;

export interface SfsItem {
  keys: SfsKeyPath;
  offset: number;
  length: number;
  dtype: SfsDtype;
  shape?: number[];
}

export const SFS_SENSOR_TYPES = ['camera', 'lidar', 'radar', 'odometry', 'points'] as const;
export const SFS_TIME_UNITS = ['microseconds', 'nanoseconds'] as const;

/** Default cap on the header size: headers describe, item bytes carry the bulk, so 8 MiB is generous. */
export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024 * 1024;
