import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The one Secrets Manager call the functions make (GetSecretValue, JSON 1.1), for the local pipeline and tests.
 * There is no Secrets Manager emulator on npm; this is all the product needs.
 */
export async function startSecretsManager(initial: Record<string, string> = {}) {
  const secrets = new Map(Object.entries(initial));
  let available = true;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(body));
    };
    if (!available) return send(500, { __type: 'InternalServiceError', message: 'Secrets Manager is unavailable (simulated)' });
    const target = req.headers['x-amz-target'];
    if (target !== 'secretsmanager.GetSecretValue') return send(400, { __type: 'InvalidRequestException', message: `Unsupported operation ${String(target)}` });
    let secretId: string | undefined;
    try {
      secretId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: string }).SecretId;
    } catch {
      return send(400, { __type: 'InvalidRequestException', message: 'Body is not JSON' });
    }
    const value = secretId ? secrets.get(secretId) : undefined;
    if (!secretId || value === undefined) return send(400, { __type: 'ResourceNotFoundException', message: `Secrets Manager can't find the specified secret: ${secretId}` });
    send(200, {
      ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${secretId}`,
      Name: secretId,
      SecretString: value,
      VersionId: 'local',
      VersionStages: ['AWSCURRENT'],
      CreatedDate: Date.now() / 1000,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (id: string, value: string) => void secrets.set(id, value),
    setAvailable: (value: boolean) => void (available = value),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
