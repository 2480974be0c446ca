/**
 * Decode and validate one recognition result (spec section 3). Pure: bytes in,
 * `{ ok, value }` or `{ ok: false, reason }` out, never a throw.
 */
import { z } from "zod";
import type { Checked, RecognitionResult } from "./types.js";

/** Largest accepted body, in bytes (spec section 3). */
export const MAX_RESULT_BYTES = 1024 * 1024;
/** Longest accepted `matches` array (spec section 3). */
export const MAX_MATCH_ITEMS = 10_000;
const MAX_DURATION_MS = 86_400_000;

// ISO-8601 date and time with Z or ±hh:mm; fractional seconds optional.
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** Epoch ms of an ISO-8601 instant, or NaN when it is not one (Date.parse alone accepts Feb 30). */
export function parseInstant(text: string): number {
  const m = ISO_INSTANT.exec(text);
  if (m === null) return Number.NaN;
  const [year, month, day, hour, minute, second, offH, offM] = m.slice(1).map(Number) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  const fieldsOk =
    month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysInMonth &&
    hour! <= 23 && minute! <= 59 && second! <= 59 &&
    (offH === undefined || Number.isNaN(offH) || (offH <= 23 && offM! <= 59));
  return fieldsOk ? Date.parse(text) : Number.NaN;
}

const positiveId = z.int().positive();

const matchItemSchema = z
  .object({
    assetId: positiveId,
    startMs: z.int().nonnegative(),
    endMs: z.int().nonnegative(),
    score: z.number().min(0).max(1),
  })
  .refine((m) => m.startMs < m.endMs, { message: "startMs must be less than endMs" });

const resultSchema = z.object({
  aid: positiveId,
  cid: positiveId,
  mid: positiveId,
  tid: z.int().nonnegative(),
  durationMs: z.int().min(1).max(MAX_DURATION_MS),
  recognizedAt: z.string().refine((s) => !Number.isNaN(parseInstant(s)), {
    message: "not an ISO-8601 date and time with Z or a ±hh:mm offset",
  }),
  matches: z.array(matchItemSchema).max(MAX_MATCH_ITEMS),
});

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** One line, whatever the input: control characters and newlines become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").slice(0, 300);
}

/** Validate an already-parsed JSON value. */
export function checkResult(value: unknown): Checked<RecognitionResult> {
  const parsed = resultSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join(".") : "body";
    return { ok: false, reason: oneLine(`${where}: ${issue.message}`) };
  }
  const r = parsed.data;
  return { ok: true, value: { ...r, recognizedAtMs: parseInstant(r.recognizedAt) } };
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
