/**
 * The hand-written instant parser against the straightforward one it replaced
 * (a regex and Date arithmetic, kept here as the reference), on strings built
 * near the format and then damaged.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseInstant } from "../../src/ingest/decode-result.js";

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

function referenceInstant(text: string): number {
  const m = ISO_INSTANT.exec(text);
  if (m === null) return Number.NaN;
  const year = +m[1]!, month = +m[2]!, day = +m[3]!, hour = +m[4]!, minute = +m[5]!, second = +m[6]!;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  // Days in the month from setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999, and
  // 0000 is a leap year where 1900 is not (fast-check found 0000-02-29 with seed -1186668177).
  const lastOfMonth = new Date(0);
  lastOfMonth.setUTCFullYear(year, month, 0);
  if (day > 28 && day > lastOfMonth.getUTCDate()) return Number.NaN;
  const ms = m[7] === undefined ? 0 : +(m[7] + "00").slice(0, 3);
  let offsetMin = 0;
  if (m[8] !== undefined) {
    const offH = +m[9]!, offM = +m[10]!;
    if (offH > 23 || offM > 59) return Number.NaN;
    offsetMin = (m[8] === "-" ? -1 : 1) * (offH * 60 + offM);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime() - offsetMin * 60_000;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");
const instant = fc
  .record({
    year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(1900, 2000, 2024, 2026, 2100)),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.integer({ min: 0, max: 25 }),
    minute: fc.integer({ min: 0, max: 60 }),
    second: fc.integer({ min: 0, max: 60 }),
    fraction: fc.option(fc.stringMatching(/^\d{0,9}$/)),
    zone: fc.oneof(fc.constant("Z"), fc.constant("z"), fc.constant(""), fc.tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 })).map(([s, h, m]) => `${s}${pad(h, 2)}:${pad(m, 2)}`)),
  })
  .map((p) => `${pad(p.year, 4)}-${pad(p.month, 2)}-${pad(p.day, 2)}T${pad(p.hour, 2)}:${pad(p.minute, 2)}:${pad(p.second, 2)}${p.fraction === null ? "" : `.${p.fraction}`}${p.zone}`);
/** A string near the format, with a character replaced, inserted or removed. */
const damaged = fc.tuple(instant, fc.nat(40), fc.constantFrom("replace", "insert", "delete"), fc.constantFrom("0", "9", "-", ":", "T", "Z", ".", " ", "+", "x", "٣")).map(([s, at, how, c]) => {
  const i = at % (s.length + 1);
  return how === "replace" ? s.slice(0, i) + c + s.slice(i + 1) : how === "insert" ? s.slice(0, i) + c + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
});

describe("parseInstant", () => {
  it("agrees with the regex-and-Date reference on well-formed, out-of-range and damaged instants", () => {
    fc.assert(
      fc.property(fc.oneof(instant, damaged, fc.string()), (text) => {
        expect(parseInstant(text)).toBe(referenceInstant(text));
      }),
      { numRuns: 20_000 },
    );
  });
  it("reads leap days, offsets and long fractions", () => {
    expect(parseInstant("2024-02-29T00:00:00Z")).toBe(Date.UTC(2024, 1, 29));
    expect(Number.isNaN(parseInstant("2100-02-29T00:00:00Z"))).toBe(true);
    expect(parseInstant("2000-02-29T23:59:59.999999+14:00")).toBe(Date.UTC(2000, 1, 29, 23, 59, 59, 999) - 14 * 3_600_000);
    expect(parseInstant("0001-01-01T00:00:00Z")).toBe(referenceInstant("0001-01-01T00:00:00Z"));
    expect(parseInstant("0000-02-29T00:00:00+00:00")).toBe(Date.parse("0000-02-29T00:00:00+00:00")); // year 0 is a leap year
  });
});
