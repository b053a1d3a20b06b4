// Runs one function bundle in its own process, as a Lambda instance would: the module is imported once
// (cold start), then invocations arrive one at a time over IPC. Its stdout and stderr are the function's logs.
// The parent enforces the timeout (it kills this process); each invocation carries its deadline so that
// context.getRemainingTimeInMillis() tells the truth.
import process from 'node:process';

const [bundle, functionName, memoryMb = '512'] = process.argv.slice(2);

// Without its parent nobody can invoke or stop this instance: leave rather than linger as an orphan.
process.on('disconnect', () => process.exit(0));
// A terminal's Ctrl-C reaches the whole process group; the parent decides when its instances stop.
process.on('SIGINT', () => undefined);

const module = await import(bundle);
let invocation = 0;

process.on('message', async ({ id, event, deadline }) => {
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: memoryMb,
    awsRequestId: `local-${process.pid}-${++invocation}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${process.pid}`,
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const result = await module.handler(event, context);
    process.send({ id, ok: true, result });
  } catch (err) {
    process.send({ id, ok: false, error: { name: err?.name, message: err?.message, stack: err?.stack } });
  }
});
process.send({ ready: true });
