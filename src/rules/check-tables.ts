/**
 * Whether this instance can read the rule tables now (spec section 9): one cheap query that needs the
 * same privileges and tables a load does (a row of each table, by primary key), whatever the
 * instance's role. A follower that cannot read them must not look healthy, and a leader that cannot
 * must give the lease to one that can.
 */
import type { Logger } from "pino";
import { describeDatabaseFailure, type RuleDatabase } from "./database.js";

/** The outcome of one check: readable, or why not. */
export type TablesCheck = { readonly readable: true } | { readonly readable: false; readonly reason: string };

export async function checkRuleTables(database: RuleDatabase): Promise<TablesCheck> {
  try {
    await database.pool.query("SELECT (SELECT id FROM video_tort_rule ORDER BY id LIMIT 1), (SELECT id FROM video_tort_rule_property ORDER BY id LIMIT 1)");
    return { readable: true };
  } catch (err) {
    return { readable: false, reason: `${database.describe}: ${describeDatabaseFailure(err)}` };
  }
}

/** What an instance knows of its own access to the tables: from its checks and from its loads, whichever came last. */
export interface TablesAccess {
  /** null before the first check. */
  readable(): boolean | null;
  /** Why not, when not. */
  reason(): string | null;
  /** Check now (at start, on each notice, every `periodMs`); resolves with the outcome. */
  check(): Promise<TablesCheck>;
  /** A load's outcome says the same: a load that read is a check that passed. */
  noteLoad(outcome: TablesCheck): void;
  stop(): void;
}

/** Shortest time between two checks, ms: a flood of notices makes at most one check a second, one at a time. */
export const TABLES_CHECK_GAP_MS = 1_000;

/**
 * Follow this instance's access to the rule tables: checked now, every `periodMs` (0 = only when
 * asked), and told by every load. A change is logged once: a warning when the tables cannot be read
 * (the fleet's leader rule uses it), info when they can again.
 */
export function watchTablesAccess(database: RuleDatabase, options: { periodMs: number; log: Logger }): TablesAccess {
  let state: TablesCheck | null = null;
  let stopped = false;
  const note = (outcome: TablesCheck) => {
    const was = state?.readable ?? null;
    state = outcome;
    if (outcome.readable === was) return;
    if (outcome.readable) options.log.info("the rule tables can be read");
    else options.log.warn({ reason: outcome.reason }, "the rule tables cannot be read by this instance: it serves the rules it has or fetches, and gives the fleet's lease to an instance that can read");
  };
  let running: Promise<TablesCheck> | null = null;
  let lastAt = Number.NEGATIVE_INFINITY;
  const check = (): Promise<TablesCheck> => {
    if (running !== null) return running;
    if (state !== null && performance.now() - lastAt < TABLES_CHECK_GAP_MS) return Promise.resolve(state);
    running = checkRuleTables(database).then((outcome) => {
      running = null;
      lastAt = performance.now();
      if (!stopped) note(outcome);
      return outcome;
    });
    return running;
  };
  const timer = options.periodMs > 0 ? setInterval(() => void check(), options.periodMs) : undefined;
  timer?.unref();
  void check();
  return {
    readable: () => state?.readable ?? null,
    reason: () => (state !== null && !state.readable ? state.reason : null),
    check,
    noteLoad: note,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
