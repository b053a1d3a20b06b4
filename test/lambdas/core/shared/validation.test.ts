import * as z from 'zod/mini';
import { describe, expect, it } from 'vitest';
import { boundText, checkAgainst, checkEach, clip, formatPath, MAX_REASON_BYTES, quote, summarizeProblems } from '../../../../lambdas/core/shared/validation.js';

// Every expected value is a literal: these functions decide what a person reads in a reason or a log line.

describe('paths in messages', () => {
  it('writes a JSON path the way a person would', () => {
    expect(formatPath(['sensors', 2, 'id'])).toBe('sensors[2].id');
    expect(formatPath([0, 'id'])).toBe('[0].id');
    expect(formatPath(['a'])).toBe('a');
    expect(formatPath([])).toBe('(root)');
  });

  it('names at most 12 parts, each at most 64 characters', () => {
    const twelve = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'];
    expect(formatPath(twelve)).toBe('a.b.c.d.e.f.g.h.i.j.k.l');
    expect(formatPath([...twelve, 'm'])).toBe('a.b.c.d.e.f.g.h.i.j.k.l…');
    expect(formatPath(['x'.repeat(64), 'y'.repeat(64)])).toBe(`${'x'.repeat(64)}.${'y'.repeat(64)}`);
    expect(formatPath(['x'.repeat(65), 'y'.repeat(65)])).toBe(`${'x'.repeat(63)}….${'y'.repeat(63)}…`);
  });
});

describe('clip', () => {
  it('keeps text of exactly the limit and cuts one more, marking the cut', () => {
    expect(clip('abcde', 5)).toBe('abcde');
    expect(clip('abcdef', 5)).toBe('abcd…');
    expect(clip('ab', 1)).toBe('…');
    expect(clip('ab', 0)).toBe('…');
  });

  it('never keeps half of a character outside the Basic Multilingual Plane', () => {
    expect(clip('😀😀', 2)).toBe('…');
    expect(clip('a😀b', 3)).toBe('a…');
    expect(clip('a😀b', 4)).toBe('a😀b');
    // The first and the last high surrogate: U+10000 and U+10FFFF.
    expect(clip('a\u{10000}b', 3)).toBe('a…');
    expect(clip('a\u{10FFFF}b', 3)).toBe('a…');
    // Just outside the high surrogates, U+D7FF below and U+DC00 (a low surrogate) above, nothing is dropped.
    expect(clip('a\uD7FFbc', 3)).toBe('a\uD7FF…');
    expect(clip('a\uDC00bc', 3)).toBe('a\uDC00…');
  });
});

describe('quote', () => {
  it('quotes strings as JSON and other values as JSON where they have a form', () => {
    expect(quote('a"b')).toBe('"a\\"b"');
    expect(quote({ a: 1 })).toBe('{"a":1}');
    expect(quote(5)).toBe('5');
    expect(quote(undefined)).toBe('undefined');
    // No JSON form: the value's own string, instead of a crash.
    expect(quote(10n)).toBe('10');
  });

  it('shows at most 60 characters of a value (62 with the quotes)', () => {
    expect(quote('x'.repeat(60))).toBe(`"${'x'.repeat(60)}"`);
    expect(quote('x'.repeat(61))).toBe(`"${'x'.repeat(59)}…"`);
    expect(quote('x'.repeat(10), 4)).toBe('"xxx…"');
    expect(quote(['y'.repeat(100)])).toBe(`["${'y'.repeat(59)}…`);
  });
});

describe('boundText', () => {
  it('keeps a message of exactly 1024 bytes and cuts a longer one to 1024 bytes ending in …', () => {
    expect(MAX_REASON_BYTES).toBe(1024);
    const exact = 'a'.repeat(1024);
    expect(boundText(exact)).toBe(exact);
    expect(boundText('a'.repeat(1025))).toBe(`${'a'.repeat(1021)}…`);
    expect(boundText('a'.repeat(2000), 10)).toBe('aaaaaaa…');
  });

  it('counts UTF-8 bytes, not characters, and never cuts inside a two-byte character', () => {
    // 'é' is two bytes: 510 of them (1020 bytes) and the three-byte mark make 1023; 511 would make 1025.
    expect(boundText('é'.repeat(1000))).toBe(`${'é'.repeat(510)}…`);
    expect(boundText('é'.repeat(512))).toBe('é'.repeat(512));
  });

  it('bounds a megabyte of text', () => {
    expect(boundText('z'.repeat(1_000_000))).toBe(`${'z'.repeat(1021)}…`);
  });

  it('never cuts between the two halves of a four-byte character', () => {
    // 1,018 + 4 bytes would leave no room for the mark: the emoji goes whole, not half of it.
    expect(boundText(`${'a'.repeat(1018)}😀bbbbb`)).toBe(`${'a'.repeat(1018)}…`);
    expect(boundText(`${'a'.repeat(1017)}😀bbbbb`)).toBe(`${'a'.repeat(1017)}😀…`);
  });
});

describe('summarizeProblems', () => {
  it('joins problems that fit with "; " and adds nothing when all are named', () => {
    expect(summarizeProblems(['a: bad', 'b: worse'])).toBe('a: bad; b: worse');
    expect(summarizeProblems([])).toBe('');
  });

  it('names at most 20 problems and counts the rest exactly', () => {
    const problems = Array.from({ length: 25 }, (_, i) => `p${i + 1}`);
    expect(summarizeProblems(problems)).toBe('p1; p2; p3; p4; p5; p6; p7; p8; p9; p10; p11; p12; p13; p14; p15; p16; p17; p18; p19; p20 … and 5 more problems');
    expect(summarizeProblems(problems.slice(0, 21))).toMatch(/; p20 … and 1 more problem$/);
    expect(summarizeProblems(['only'], 800, 5)).toBe('only … and 4 more problems');
  });

  it('fills the default 800 bytes up to 40 short of the limit, and no further', () => {
    // Each named problem costs its bytes plus 2 for the separator: 300 + 300 + 160 = 760 = 800 - 40 fits.
    const two = ['a'.repeat(298), 'b'.repeat(298)];
    expect(summarizeProblems([...two, 'c'.repeat(158)])).toBe(`${'a'.repeat(298)}; ${'b'.repeat(298)}; ${'c'.repeat(158)}`);
    expect(summarizeProblems([...two, 'c'.repeat(159)])).toBe(`${'a'.repeat(298)}; ${'b'.repeat(298)} … and 1 more problem`);
  });

  it('holds a custom byte budget exactly', () => {
    // Budget 52 - 40 = 12: "aaaa" and "bbbb" cost 6 each.
    expect(summarizeProblems(['aaaa', 'bbbb'], 52)).toBe('aaaa; bbbb');
    expect(summarizeProblems(['aaaa', 'bbbbb'], 52)).toBe('aaaa … and 1 more problem');
  });

  it('cuts one long problem to 300 bytes', () => {
    expect(summarizeProblems(['x'.repeat(300)])).toBe('x'.repeat(300));
    expect(summarizeProblems(['x'.repeat(301)])).toBe(`${'x'.repeat(297)}…`);
  });
});

describe('checkAgainst', () => {
  const problemsOf = (schema: z.ZodMiniType, data: unknown) => {
    const checked = checkAgainst(schema, data);
    return checked.ok ? [] : checked.problems;
  };

  it('returns the parsed value when the input is valid', () => {
    expect(checkAgainst(z.object({ a: z._default(z.number(), 7) }), {})).toEqual({ ok: true, value: { a: 7 } });
  });

  it('words each kind of problem the same whatever zod locale is loaded', () => {
    expect(problemsOf(z.object({ a: z.string() }), { a: 5 })).toEqual(['a: expected string']);
    expect(problemsOf(z.enum(['a', 'b']), 'c')).toEqual(['(root): expected one of "a", "b"']);
    expect(problemsOf(z.string().check(z.minLength(3)), 'ab')).toEqual(['(root): must be at least 3']);
    expect(problemsOf(z.array(z.string()).check(z.minLength(2)), ['a'])).toEqual(['(root): must be at least 2 items']);
    expect(problemsOf(z.number().check(z.lte(3)), 4)).toEqual(['(root): must be at most 3']);
    expect(problemsOf(z.array(z.string()).check(z.maxLength(1)), ['a', 'b'])).toEqual(['(root): must be at most 1 items']);
    expect(problemsOf(z.email(), 'nobody')).toEqual(['(root): must be a valid email']);
    expect(problemsOf(z.union([z.string(), z.number()]), true)).toEqual(['(root): is invalid']);
  });

  it('names at most five unknown keys, each at most 40 characters, and counts the rest', () => {
    const strict = z.strictObject({});
    expect(problemsOf(strict, { a: 1, b: 1, c: 1, d: 1, e: 1 })).toEqual(['(root): unknown key(s) a, b, c, d, e']);
    expect(problemsOf(strict, { a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1 })).toEqual(['(root): unknown key(s) a, b, c, d, e and 2 more']);
    expect(problemsOf(strict, { ['k'.repeat(41)]: 1 })).toEqual([`(root): unknown key(s) ${'k'.repeat(39)}…`]);
  });

  it('reports input too deeply nested for the parser as a problem, and lets other errors through', () => {
    const Tree: z.ZodMiniType = z.array(z.lazy(() => Tree));
    let deep: unknown[] = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(checkAgainst(Tree, deep)).toEqual({ ok: false, problems: ['(root): too large or too deeply nested to check'] });
    const broken = z.string().check(z.refine(() => {
      throw new TypeError('a bug in a refinement');
    }));
    expect(() => checkAgainst(broken, 'x')).toThrow('a bug in a refinement');
  });
});

describe('checkEach', () => {
  const Item = z.object({ id: z.string(), n: z.number(), flag: z.boolean(), tag: z.string() });
  const good = { id: 'a', n: 1, flag: true, tag: 't' };

  it('returns every value when all elements are valid', () => {
    expect(checkEach(Item, [good, good], 'items')).toEqual({ ok: true, value: [good, good] });
    expect(checkEach(Item, [], 'items')).toEqual({ ok: true, value: [] });
  });

  it('names each failing element by index, at most three problems each, and counts all that failed', () => {
    expect(checkEach(Item, [good, {}, 'x', { ...good, n: 'one' }], 'items')).toEqual({
      ok: false,
      problems: ['items[1].id: expected string; items[1].n: expected number; items[1].flag: expected boolean', 'items[2]: expected object', 'items[3].n: expected number'],
      failed: 3,
    });
  });

  it('names at most maxNamed elements and still counts every failure', () => {
    expect(checkEach(z.string(), [1, 2, 3, 4], 'frames', 2)).toEqual({ ok: false, problems: ['frames[0]: expected string', 'frames[1]: expected string'], failed: 4 });
    const many = checkEach(z.string(), Array.from({ length: 25 }, () => 0), 'frames');
    expect(many.ok ? 0 : many.problems.length).toBe(20);
    expect(many.failed).toBe(25);
  });
});
