import type { SfsValue } from '../lambdas/core/scenes/sfs/writer.js';
import { mulberry32 } from './random.js';

export interface SampleSceneOptions {
  lidarFrames?: number;
  pointsPerFrame?: number;
  /** Bytes of the (fake) JPEG each camera frame embeds. */
  cameraImageBytes?: number;
  cameraFrames?: number;
  /** Deterministic content: the same seed gives the same bytes. */
  seed?: number;
}

/**
 * A plausible scene: one lidar with `lidarFrames` sweeps and one camera with embedded images. Sizes are
 * tunable so the same builder gives a few-KB test scene or a tens-of-MB one.
 */
export function buildSampleScene(options: SampleSceneOptions = {}): Record<string, SfsValue> {
  const { lidarFrames = 2, pointsPerFrame = 64, cameraImageBytes = 256, cameraFrames = 1, seed = 1 } = options;
  const random = mulberry32(seed);
  const frameTimes = Array.from({ length: lidarFrames }, (_, i) => i * 100_000);

  const frames = frameTimes.map((timestamp) => {
    const positions = new Float32Array(pointsPerFrame * 3);
    for (let i = 0; i < positions.length; i++) positions[i] = (random() - 0.5) * 100;
    const intensities = new Uint8Array(pointsPerFrame);
    for (let i = 0; i < intensities.length; i++) intensities[i] = Math.floor(random() * 256);
    return { timestamp, points: { positions, intensities } };
  });

  const images = Array.from({ length: cameraFrames }, (_, i) => {
    const content = new Uint8Array(cameraImageBytes);
    for (let j = 0; j < content.length; j++) content[j] = Math.floor(random() * 256);
    // A JPEG starts with FF D8 FF: readers that sniff the payload see an image.
    content.set([0xff, 0xd8, 0xff].slice(0, content.length));
    return { timestamp: i * 100_000, content };
  });

  const identityPose = (n: number) => ({
    timestamps: new Float64Array(frameTimes.slice(0, n)),
    values: new Float64Array(Array.from({ length: n }, () => [0, 0, 0, 0, 0, 0, 1]).flat()),
  });

  return {
    version: '1.0',
    time_unit: 'microseconds',
    time_offset: 0,
    metadata: { source: 'sample-scene' },
    sensors: [
      { id: 'lidar', type: 'lidar', coordinates: 'ego', poses: identityPose(lidarFrames), frames },
      {
        id: 'cam_front',
        type: 'camera',
        poses: identityPose(Math.min(cameraFrames, lidarFrames)),
        intrinsics: { fx: 1000, fy: 1000, cx: 960, cy: 540, width: 1920, height: 1080 },
        images,
      },
    ],
    annotations: [],
    attributes: [],
  };
}

/**
 * One LiDAR frame as a JSON document for `split_base64` scenes. Scale's exact frame schema is not public; this
 * has what is certain (a points array of {x, y, z}) plus the usual device pose and timestamp.
 */
export function buildSampleFrame(index: number, points = 50, seed = 1): Record<string, unknown> {
  const random = mulberry32(seed * 1000 + index);
  return {
    timestamp: index * 100_000,
    device_position: { x: index * 1.5, y: 0, z: 1.8 },
    device_heading: { x: 0, y: 0, z: 0, w: 1 },
    points: Array.from({ length: points }, () => ({ x: (random() - 0.5) * 100, y: (random() - 0.5) * 100, z: random() * 4, i: Math.round(random() * 255) })),
  };
}
