/**
 * Report a load's skipped rows in one compact line: counts by kind of reason
 * and a few ids. The same set of skipped rows is reported once, not at every
 * refresh: the line comes again only when the set changes.
 */
import type { Logger } from "pino";
import type { RuleSnapshot, SkippedRow } from "../match/snapshot.js";

/** Most skipped row ids named in the line. */
export const MAX_SKIPPED_LOGGED = 10;

/** A reason without its particular values: `value " 55" is not …` → `value … is not …`. */
const reasonKind = (reason: string) => reason.replace(/"(?:[^"\\]|\\.)*"/g, "…").replace(/\d+/g, "N");

/** A fingerprint of the set of skipped rows (table and id), to tell when it changed. */
function fingerprint(rows: readonly SkippedRow[]): string {
  let h = 0x811c9dc5;
  for (const row of rows) {
    const text = `${row.table === "video_tort_rule" ? "r" : "p"}${row.id},`;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return `${rows.length}:${(h >>> 0).toString(16)}`;
}

export interface SkippedRowsReporter {
  /** Log the snapshot's skipped rows when their set differs from the last one logged. */
  report(snapshot: RuleSnapshot): void;
}

export function createSkippedRowsReporter(log: Logger): SkippedRowsReporter {
  let last = fingerprint([]);
  return {
    report(snapshot) {
      const print = fingerprint(snapshot.skipped);
      if (print === last) return;
      last = print;
      if (snapshot.skipped.length === 0) {
        log.info({ rulesVersion: snapshot.version }, "no rule rows skipped any more");
        return;
      }
      const reasons: Record<string, number> = {};
      for (const row of snapshot.skipped) {
        const kind = reasonKind(row.reason);
        reasons[kind] = (reasons[kind] ?? 0) + 1;
      }
      log.warn(
        {
          rulesVersion: snapshot.version,
          skippedRules: snapshot.counts.skippedRules,
          skippedProperties: snapshot.counts.skippedProperties,
          reasons,
          ids: snapshot.skipped.slice(0, MAX_SKIPPED_LOGGED).map((r) => `${r.table === "video_tort_rule" ? "rule" : "property"} ${r.id}`),
        },
        "rule rows skipped: they break the contract (logged again when the set changes)",
      );
    },
  };
}
