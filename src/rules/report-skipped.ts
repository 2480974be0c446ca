/** Report a load's skipped rows once, with their ids (bounded: the first 100 ids per table). */
import type { Logger } from "pino";
import type { RuleSnapshot } from "../match/snapshot.js";

/** Most skipped rows named in one log line. */
export const MAX_SKIPPED_LOGGED = 100;

export function logSkippedRows(log: Logger, snapshot: RuleSnapshot): void {
  if (snapshot.skipped.length === 0) return;
  log.warn(
    {
      rulesVersion: snapshot.version,
      skippedRules: snapshot.counts.skippedRules,
      skippedProperties: snapshot.counts.skippedProperties,
      rows: snapshot.skipped.slice(0, MAX_SKIPPED_LOGGED),
      more: Math.max(0, snapshot.skipped.length - MAX_SKIPPED_LOGGED),
    },
    "rule rows skipped: they break the contract",
  );
}
