/** The rule snapshot's memory budget: what a row costs, and the error of a load or fetch that would pass it. */

/**
 * What a snapshot holds per row, about (measured on the seeded 185k rows by
 * bench:scale): a rule row keeps its table entry and, when active, a compiled
 * rule; a property row its typed-array columns and, for an asset, its place in
 * the asset index. Used to abandon a load that would exceed its memory budget
 * while it is read, before the snapshot exists.
 */
export const RULE_ROW_BYTES = 700;
export const PROPERTY_ROW_BYTES = 80;

/** A load abandoned because the snapshot would exceed its memory budget (TORT_SNAPSHOT_MAX_MB). */
export class SnapshotOverBudgetError extends Error {
  override name = "SnapshotOverBudgetError";
  constructor(
    readonly rows: { readonly rules: number; readonly properties: number },
    readonly estimateBytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `the rule snapshot would exceed its memory budget: ${rows.rules} rule rows and ${rows.properties} property rows read so far ≈ ${Math.round(estimateBytes / 2 ** 20)} MB > ${Math.round(maxBytes / 2 ** 20)} MB (TORT_SNAPSHOT_MAX_MB, --snapshot-max-mb); the load was abandoned`,
    );
  }
}
