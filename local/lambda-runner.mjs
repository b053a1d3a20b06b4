// Runs one function bundle in its own process, as a Lambda instance would: the module is imported once
// (cold start), then invocations arrive one at a time over IPC. Its stdout and stderr are the function's logs.
import process from 'node:process';

const [bundle, functionName] = process.argv.slice(2);
const module = await import(bundle);
let invocation = 0;

process.on('message', async ({ id, event }) => {
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: `local-${process.pid}-${++invocation}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${process.pid}`,
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 60_000,
  };
  try {
    const result = await module.handler(event, context);
    process.send({ id, ok: true, result });
  } catch (err) {
    process.send({ id, ok: false, error: { name: err?.name, message: err?.message, stack: err?.stack } });
  }
});
process.send({ ready: true });
