import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UpdateExpression } from '../tasks/dynamo-update-expression.js';
import { micros, ticketsFrom, toMicros, UNLIMITED, type Decrease, type RateState, type Ticket } from './rate-rules.js';
import { backToBack, slackAfterDecrease, type RateStore, type TicketRequest } from './rate-store.js';

/** Key schema of the rate table: the stack and the local pipeline both build the table from this. */
export const RATE_TABLE_SCHEMA = { partitionKey: 'id' } as const;

/** The one item: the rate of the Scale API key every create-task instance sends with. */
export const RATE_ITEM_ID = 'scale-api';

/**
 * The shared rate in its own DynamoDB table, one item, written with conditional UpdateItems only. The schedule is
 * kept in whole microseconds (`tatMicros`), so that DynamoDB adds and compares it exactly as the code does. A
 * refused condition is followed by a consistent GetItem: ReturnValuesOnConditionCheckFailure would save it on
 * DynamoDB, but the local stand-in ignores it.
 */
export class DynamoRateStore implements RateStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly itemId = RATE_ITEM_ID,
  ) {}

  async read(signal?: AbortSignal): Promise<RateState> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: this.key(), ConsistentRead: true }), { abortSignal: signal });
    return stateOf(Item);
  }

  async takeTickets(request: TicketRequest, signal?: AbortSignal): Promise<{ tickets: Ticket[]; state: RateState }> {
    const { earliest, seen, rate, gapMs, count } = request;
    const expr = new UpdateExpression();
    const tat = expr.name('tatMicros');
    const span = count * micros(gapMs);
    const resumes = backToBack(request);
    if (resumes) {
      expr.setRaw(`${tat} = ${tat} + ${expr.value(span)}`);
      // Only tickets due back to back prove that a rate held.
      expr.add('issued', count);
    } else expr.set('tatMicros', micros(earliest) + span);
    expr.add('version', 1);
    // The base too: a discovery's shares change it within an epoch, and the tickets' rate comes from it.
    const condition = `${this.sameEpoch(expr, seen.epoch)} AND ${expr.name('base')} = ${expr.value(seen.base)} AND ${tat} ${resumes ? '>=' : '<'} ${expr.value(micros(earliest))}`;
    const item = await this.update(expr, condition, signal);
    if (!item) return { tickets: [], state: await this.read(signal) };
    const state = stateOf(item);
    const first = resumes ? (micros(state.tat) - span) / 1e3 : earliest;
    return { tickets: ticketsFrom(first, count, gapMs, rate, state.epoch), state };
  }

  async lowerRate(seen: RateState, next: Decrease, signal?: AbortSignal): Promise<{ ok: boolean; state: RateState }> {
    const expr = new UpdateExpression();
    const { resumeAt, ...fields } = next;
    for (const [field, value] of Object.entries(fields)) expr.setOrRemove(field, value ?? undefined);
    expr.set('issued', 0);
    expr.set('epoch', seen.epoch + 1);
    // A string set cannot be empty: no shares reported yet is no attribute.
    expr.remove('reporters');
    if (resumeAt !== null) expr.set('tatMicros', micros(toMicros(resumeAt)));
    else {
      const tat = expr.name('tatMicros');
      expr.setRaw(`${tat} = if_not_exists(${tat}, ${expr.value(micros(toMicros(next.changedAt)))}) + ${expr.value(micros(slackAfterDecrease(next)))}`);
    }
    expr.add('version', 1);
    const item = await this.update(expr, this.sameEpoch(expr, seen.epoch), signal);
    return item ? { ok: true, state: stateOf(item) } : { ok: false, state: await this.read(signal) };
  }

  async reportShare(epoch: number, instance: string, share: number, signal?: AbortSignal): Promise<RateState> {
    const expr = new UpdateExpression();
    expr.add('base', share);
    expr.add('reporters', new Set([instance]));
    expr.add('version', 1);
    const reporters = expr.name('reporters');
    const condition = `${this.sameEpoch(expr, epoch)} AND ${expr.name('discovering')} = ${expr.value(true)} AND NOT contains(${reporters}, ${expr.value(instance)})`;
    const item = await this.update(expr, condition, signal);
    return item ? stateOf(item) : this.read(signal);
  }

  /** The item is at `epoch`; epoch 0 is the item that was never written (every decrease raises the epoch). */
  private sameEpoch(expr: UpdateExpression, epoch: number): string {
    const name = expr.name('epoch');
    return epoch === 0 ? `attribute_not_exists(${name})` : `${name} = ${expr.value(epoch)}`;
  }

  private key() {
    return { [RATE_TABLE_SCHEMA.partitionKey]: this.itemId };
  }

  /** The item after the update; undefined when the condition refused it. */
  private async update(expr: UpdateExpression, condition: string, signal?: AbortSignal): Promise<Record<string, unknown> | undefined> {
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(),
          UpdateExpression: expr.toString(),
          ConditionExpression: condition,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
          ReturnValues: 'ALL_NEW',
        }),
        { abortSignal: signal },
      );
      return Attributes;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException || (err as Error)?.name === 'ConditionalCheckFailedException') return undefined;
      throw err;
    }
  }
}

/** The state an item holds; no item: UNLIMITED. An item this code did not write is an error, not a guess. */
export function stateOf(item: Record<string, unknown> | undefined): RateState {
  if (!item) return { ...UNLIMITED, reporters: [] };
  const number = (field: string, fallback?: number): number => {
    const value = item[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`the rate item's ${field} is not a number: ${JSON.stringify(value)?.slice(0, 100)}`);
    return value;
  };
  const optional = (field: string) => (item[field] === undefined ? null : number(field));
  const reporters = item.reporters ?? new Set<string>();
  if (!(reporters instanceof Set) || [...reporters].some((r) => typeof r !== 'string')) throw new Error("the rate item's reporters are not a string set");
  return {
    epoch: number('epoch'),
    base: optional('base'),
    ceiling: optional('ceiling'),
    issued: number('issued', 0),
    holdTickets: number('holdTickets', 0),
    changedAt: number('changedAt'),
    tat: number('tatMicros') / 1e3,
    discovering: item.discovering === true,
    suspect: item.suspect === true,
    reporters: [...(reporters as Set<string>)],
    version: number('version'),
  };
}
