/**
 * Decode and validate one recognition result (spec section 3). Pure: bytes in,
 * `{ ok, value }` or `{ ok: false, reason }` out, never a throw.
 */
import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Checked, RecognitionResult } from "../match/types.js";

/** Largest accepted body, in bytes (spec section 3). */
export const MAX_RESULT_BYTES = 1024 * 1024;
/** Longest accepted `matches` array (spec section 3). */
export const MAX_MATCH_ITEMS = 10_000;
const MAX_DURATION_MS = 86_400_000;

/** The value of `n` ASCII digits of `text` from `at`, or -1 when one is not a digit. */
function digitsAt(text: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = text.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return -1; // NaN past the end too
    v = v * 10 + d;
  }
  return v;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * Epoch ms of an ISO-8601 instant, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`,
 * or NaN when it is not one. Date.parse alone is not enough: it accepts Feb 30
 * and 24:00. Fractions beyond ms are truncated. Read by hand, character by
 * character (no regex, no Date): this runs once per message.
 */
export function parseInstant(text: string): number {
  const len = text.length;
  if (len < 20) return Number.NaN;
  const year = digitsAt(text, 0, 4), month = digitsAt(text, 5, 2), day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2), minute = digitsAt(text, 14, 2), second = digitsAt(text, 17, 2);
  if (
    (year | month | day | hour | minute | second) < 0 ||
    text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 || // - - T
    text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58 // : :
  ) {
    return Number.NaN;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  if (day > DAYS_IN_MONTH[month - 1]! && !(month === 2 && day === 29 && isLeap(year))) return Number.NaN;
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === 46) {
    // "." and at least one digit; the first three count.
    const first = ++at;
    let scale = 100;
    for (; at < len; at++) {
      const d = text.charCodeAt(at) - 48;
      if (d < 0 || d > 9) break;
      if (scale >= 1) {
        ms += d * scale;
        scale /= 10;
      }
    }
    if (at === first) return Number.NaN;
  }
  let offsetMin = 0;
  const sign = text.charCodeAt(at);
  if (sign === 90) {
    if (at + 1 !== len) return Number.NaN; // Z ends it
  } else if (sign === 43 || sign === 45) {
    if (at + 6 !== len || text.charCodeAt(at + 3) !== 58) return Number.NaN;
    const offH = digitsAt(text, at + 1, 2), offM = digitsAt(text, at + 4, 2);
    if (offH < 0 || offM < 0 || offH > 23 || offM > 59) return Number.NaN;
    offsetMin = (sign === 45 ? -1 : 1) * (offH * 60 + offM);
  } else {
    return Number.NaN;
  }
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms - offsetMin * 60_000;
}

const SAFE = Number.MAX_SAFE_INTEGER;
const positiveId = Type.Integer({ minimum: 1, maximum: SAFE });
const offsetMs = Type.Integer({ minimum: 0, maximum: SAFE });

/**
 * The shape of spec section 3, compiled to a JIT checker (TypeBox: ~0.1 µs a
 * result against ~2 µs for zod on the seeded data; see bench/decode). The two
 * rules a JSON schema cannot say — startMs < endMs and a real calendar
 * instant — are checked by hand after it.
 */
const resultShape = TypeCompiler.Compile(
  Type.Object({
    aid: positiveId,
    cid: positiveId,
    mid: positiveId,
    tid: offsetMs,
    durationMs: Type.Integer({ minimum: 1, maximum: MAX_DURATION_MS }),
    recognizedAt: Type.String(),
    matches: Type.Array(
      Type.Object({ assetId: positiveId, startMs: offsetMs, endMs: offsetMs, score: Type.Number({ minimum: 0, maximum: 1 }) }),
      { maxItems: MAX_MATCH_ITEMS },
    ),
  }),
);

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** One line, whatever the input: control characters and newlines become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").slice(0, 300);
}

/** Validate an already-parsed JSON value. */
export function checkResult(value: unknown): Checked<RecognitionResult> {
  if (!resultShape.Check(value)) {
    const error = resultShape.Errors(value).First()!;
    const where = error.path === "" ? "body" : error.path.slice(1).replaceAll("/", ".");
    return { ok: false, reason: oneLine(`${where}: ${error.message}`) };
  }
  const matches = value.matches;
  for (let i = 0; i < matches.length; i++) {
    if (matches[i]!.startMs >= matches[i]!.endMs) return { ok: false, reason: `matches.${i}: startMs must be less than endMs` };
  }
  const recognizedAtMs = parseInstant(value.recognizedAt);
  if (Number.isNaN(recognizedAtMs)) {
    return { ok: false, reason: "recognizedAt: not an ISO-8601 date and time with Z or a ±hh:mm offset" };
  }
  // Only the spec's fields are kept: unknown fields are ignored, not carried along.
  return {
    ok: true,
    value: {
      aid: value.aid,
      cid: value.cid,
      mid: value.mid,
      tid: value.tid,
      durationMs: value.durationMs,
      recognizedAt: value.recognizedAt,
      recognizedAtMs,
      matches,
    },
  };
}

/** Decode UTF-8 JSON bytes into a validated result. */
export function decodeResult(bytes: Uint8Array): Checked<RecognitionResult> {
  if (bytes.byteLength > MAX_RESULT_BYTES) {
    return { ok: false, reason: `body: ${bytes.byteLength} bytes exceeds the ${MAX_RESULT_BYTES}-byte limit` };
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: "body: not valid UTF-8" };
  }
  return decodeResultText(text);
}

/** Decode one JSON text (a replay line) into a validated result. */
export function decodeResultText(text: string): Checked<RecognitionResult> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: oneLine(`body: not JSON: ${(err as Error).message}`) };
  }
  return checkResult(value);
}
