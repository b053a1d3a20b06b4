// An UpdateExpression builder for the DynamoDB document client.

/** Builds an UpdateExpression with every attribute name aliased, so reserved words (status, key, size…) just work. */
export class UpdateExpression {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];

  name(field: string): string {
    this.names[`#${field}`] = field;
    return `#${field}`;
  }

  value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(field: string, value: unknown): void {
    this.sets.push(`${this.name(field)} = ${this.value(value)}`);
  }

  /** A SET clause written by the caller (names and values from name() and value()). */
  setRaw(clause: string): void {
    this.sets.push(clause);
  }

  setIfAbsent(field: string, value: unknown): void {
    const name = this.name(field);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
  }

  setOrRemove(field: string, value: unknown): void {
    if (value === undefined) this.remove(field);
    else this.set(field, value);
  }

  remove(field: string): void {
    this.removes.push(this.name(field));
  }

  /** Adds to a number, or the members of a set to a set (either created when absent). */
  add(field: string, amount: number | ReadonlySet<string>): void {
    this.adds.push(`${this.name(field)} ${this.value(amount)}`);
  }

  toString(): string {
    return [
      this.sets.length ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length ? `REMOVE ${this.removes.join(', ')}` : '',
      this.adds.length ? `ADD ${this.adds.join(', ')}` : '',
    ].filter(Boolean).join(' ');
  }
}
