import S3rver from 's3rver';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface S3rverEvent {
  Records: Array<{ eventName: string; s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string; versionId?: string; sequencer?: string } } }>;
}

/** s3rver on a free loopback port with the given buckets, storing under a fresh temporary folder. */
export async function startS3(buckets: string[]) {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    onEvent: (listener: (event: S3rverEvent) => void) => void server.on('event', (event) => listener(event as S3rverEvent)),
    close: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
