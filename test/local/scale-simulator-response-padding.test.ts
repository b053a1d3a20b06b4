import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startRecorder } from '../helpers/http.js';
import { startSimulatorFixture, type SimulatorFixture } from '../helpers/simulator-fixture.js';

let fixture: SimulatorFixture;
let receiver: Awaited<ReturnType<typeof startRecorder>>;
beforeAll(async () => {
  [fixture, receiver] = await Promise.all([startSimulatorFixture(), startRecorder()]);
});
afterAll(async () => {
  await fixture.close();
  await receiver.close();
});

const completed = (taskId: string) =>
  eventually(() => {
    const record = fixture.sim.state().tasks.find((t) => t.task.task_id === taskId);
    return record?.settled ? record : undefined;
  }, 10_000, `task ${taskId} to settle`);

describe('Scale simulator: responsePaddingBytes', () => {
  it('pads a completed response by exactly that many bytes, in the task and in its callback; 0 adds nothing', async () => {
    const plain = await completed(await fixture.createTask(`${receiver.url}/callback`));
    expect(plain.task.status).toBe('completed');
    expect(plain.task.response).not.toHaveProperty('padding');

    expect((await fetch(`${fixture.sim.origin}/_simulator/config`, { method: 'POST', body: JSON.stringify({ responsePaddingBytes: 400_000 }) })).status).toBe(200);
    const padded = await completed(await fixture.createTask(`${receiver.url}/callback`));
    fixture.sim.configure({ responsePaddingBytes: 0 });
    const response = padded.task.response as { padding: string; frames: number };
    expect(response.padding).toHaveLength(400_000);
    expect(response.padding).toMatch(/^x+$/);
    // The rest of the response is unchanged by the padding.
    expect(response.frames).toBe((plain.task.response as { frames: number }).frames);
    const callback = receiver.received.find((r) => (r.body as { task_id: string }).task_id === padded.task.task_id)!;
    expect((callback.body as { response: { padding: string } }).response.padding).toHaveLength(400_000);
  });

  it('refuses a padding past 8 MiB (the callback must stay under API Gateway\'s 10 MB)', async () => {
    const answer = await fetch(`${fixture.sim.origin}/_simulator/config`, { method: 'POST', body: JSON.stringify({ responsePaddingBytes: 9 * 1024 * 1024 }) });
    expect(answer.status).toBe(400);
  });
});
