/**
 * Report a load's skipped rows once: counts, and the ids grouped by reason
 * (bounded: at most MAX_SKIPPED_LOGGED ids in the line, the rest counted).
 */
import type { Logger } from "pino";
import type { RuleSnapshot } from "../match/snapshot.js";

/** Most skipped row ids named in one log line. */
export const MAX_SKIPPED_LOGGED = 50;

export function logSkippedRows(log: Logger, snapshot: RuleSnapshot): void {
  if (snapshot.skipped.length === 0) return;
  const byReason: Record<string, string[]> = {};
  for (const row of snapshot.skipped.slice(0, MAX_SKIPPED_LOGGED)) {
    // "rule 875 does not exist or was skipped" → one reason for all orphans
    const reason = row.reason.replace(/^rule \d+ does not exist/, "rule does not exist");
    (byReason[reason] ??= []).push(`${row.table === "video_tort_rule" ? "rule" : "property"} ${row.id}`);
  }
  log.warn(
    {
      rulesVersion: snapshot.version,
      skippedRules: snapshot.counts.skippedRules,
      skippedProperties: snapshot.counts.skippedProperties,
      rows: byReason,
      more: Math.max(0, snapshot.skipped.length - MAX_SKIPPED_LOGGED),
    },
    "rule rows skipped: they break the contract",
  );
}
