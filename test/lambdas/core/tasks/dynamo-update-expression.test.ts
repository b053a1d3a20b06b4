import { describe, expect, it } from 'vitest';
import { UpdateExpression } from '../../../../lambdas/core/tasks/dynamo-update-expression.js';

// The text the builder gives DynamoDB: every clause once, its actions comma-separated, clauses one space apart.
describe('UpdateExpression: the expression text', () => {
  it('writes only the clauses that have actions, one space apart and with no space at either end', () => {
    const set = new UpdateExpression();
    set.set('status', 'pending');
    expect(set.toString()).toBe('SET #status = :v0');

    const remove = new UpdateExpression();
    remove.remove('claimId');
    expect(remove.toString()).toBe('REMOVE #claimId');

    const add = new UpdateExpression();
    add.add('attempts', 1);
    expect(add.toString()).toBe('ADD #attempts :v0');

    const setAndAdd = new UpdateExpression();
    setAndAdd.set('updatedAt', 't');
    setAndAdd.add('attempts', 1);
    expect(setAndAdd.toString()).toBe('SET #updatedAt = :v0 ADD #attempts :v1');

    expect(new UpdateExpression().toString()).toBe('');
  });

  it('separates several actions of one clause with commas, ADD included', () => {
    const expr = new UpdateExpression();
    expr.set('status', 'pending');
    expr.setIfAbsent('createdAt', 'c');
    expr.remove('reason');
    expr.remove('scaleError');
    expr.add('attempts', 1);
    expr.add('callbackCount', 2);
    expect(expr.toString()).toBe('SET #status = :v0, #createdAt = if_not_exists(#createdAt, :v1) REMOVE #reason, #scaleError ADD #attempts :v2, #callbackCount :v3');
    expect(expr.names).toEqual({ '#status': 'status', '#createdAt': 'createdAt', '#reason': 'reason', '#scaleError': 'scaleError', '#attempts': 'attempts', '#callbackCount': 'callbackCount' });
    expect(expr.values).toEqual({ ':v0': 'pending', ':v1': 'c', ':v2': 1, ':v3': 2 });
  });
});
