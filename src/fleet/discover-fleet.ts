/**
 * The running instances of a fleet, found through the NATS service framework
 * (`$SRV.STATS.tortmatch`): each answers with the stats its explain endpoint
 * carries (rules version served, rule-cache state, in flight, limit).
 */
import { errors, type NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";

/** The NATS service every instance registers (spec section 9): `tortmatch fleet` lists them. */
/** The service name of the default deployment (TORT_SERVICE_NAME gives a deployment's own). */
export const SERVICE_NAME = "tortmatch";

/** What each instance's service stats carry (`tortmatch fleet`). */
export interface InstanceStats {
  readonly version: string | null;
  readonly state: string;
  readonly role: string;
  readonly source: string | null;
  readonly current: string | null;
  readonly pinned: string | null;
  /** The pinned version when this instance cannot serve it and ignores it. */
  readonly pinIgnored: string | null;
  /** Whether this instance can read the rule tables (null before its first check). */
  readonly tablesReadable: boolean | null;
  readonly inFlight: number;
  readonly limit: number;
  /** `auto`: the adaptive limiter sets the limit (spec section 13); `fixed`: a number does. */
  readonly mode: "auto" | "fixed";
  /** With `auto`: the measured minimum round trip (pull to PubAck) and the last window's median, ms. */
  readonly minRttMs: number | null;
  readonly rttMs: number | null;
  readonly loads: number;
  readonly fetches: number;
}

/** One running instance, as `tortmatch fleet --json` prints it. */
export interface FleetInstance extends InstanceStats {
  readonly id: string;
  /** tortmatch's own version (the package). */
  readonly software: string;
  readonly started: string;
}

/** Another instance's fields, checked (what comes over NATS is untrusted): ms a finite number at least 0, counts safe integers, texts strings; else none (or 0). */
const milliseconds = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) && x >= 0 ? x : null);
const count = (x: unknown): number => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : 0);
const text = (x: unknown): string | null => (typeof x === "string" ? x : null);

/** Nobody registered the service on this NATS: an empty fleet, not a failure. */
const nobodyRegistered = (err: unknown) => err instanceof errors.NoRespondersError || String((err as Error)?.message).includes("no responders");

/** Instances registered for `consumer`, sorted by id; waits at most `maxWaitMs` for answers. */
export async function discoverFleet(nc: NatsConnection, options: { service?: string; consumer: string; maxWaitMs?: number }): Promise<FleetInstance[]> {
  const client = new Svcm(nc).client({ strategy: "stall", stall: 300, maxWait: options.maxWaitMs ?? 2_000 });
  const found: FleetInstance[] = [];
  try {
    for await (const s of await client.stats(options.service ?? SERVICE_NAME)) {
      if (s.metadata?.consumer !== options.consumer) continue;
      const data = (s.endpoints?.[0]?.data ?? {}) as Partial<InstanceStats>;
      found.push({
        id: s.id,
        software: s.version,
        started: s.started,
        version: text(data.version),
        state: text(data.state) ?? "",
        role: text(data.role) ?? "",
        source: text(data.source),
        current: text(data.current),
        pinned: text(data.pinned),
        pinIgnored: text(data.pinIgnored),
        tablesReadable: typeof data.tablesReadable === "boolean" ? data.tablesReadable : null,
        inFlight: count(data.inFlight),
        limit: count(data.limit),
        mode: data.mode === "auto" ? "auto" : "fixed",
        minRttMs: milliseconds(data.minRttMs),
        rttMs: milliseconds(data.rttMs),
        loads: count(data.loads),
        fetches: count(data.fetches),
      });
    }
  } catch (err) {
    if (!nobodyRegistered(err)) throw err;
  }
  return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Instances registered for `consumer` that answer a ping (the framework answers it, cheaply), by id:
 * compared with discoverFleet's, it tells which instances were there but did not send their stats in time.
 */
export async function pingFleet(nc: NatsConnection, options: { service?: string; consumer: string; maxWaitMs?: number }): Promise<string[]> {
  const client = new Svcm(nc).client({ strategy: "stall", stall: 300, maxWait: options.maxWaitMs ?? 2_000 });
  const ids: string[] = [];
  try {
    for await (const s of await client.ping(options.service ?? SERVICE_NAME)) if (s.metadata?.consumer === options.consumer) ids.push(s.id);
  } catch (err) {
    if (!nobodyRegistered(err)) throw err;
  }
  return ids.sort();
}

/**
 * The fleet as the status page shows it: discovered again at most every
 * `periodMs`, and only while somebody looks (the status is built only for a
 * viewer), so that N instances do not poll each other for nothing.
 */
export function createFleetView(nc: NatsConnection, options: { service?: string; consumer: string; periodMs: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  let instances: FleetInstance[] = [];
  let fetchedAt = -Infinity;
  let running = false;
  return {
    /** The last discovery (possibly empty at first); starts a new one when due. */
    latest(): FleetInstance[] {
      const t = now();
      if (!running && t - fetchedAt >= options.periodMs) {
        running = true;
        fetchedAt = t;
        discoverFleet(nc, { ...(options.service ? { service: options.service } : {}), consumer: options.consumer, maxWaitMs: Math.min(2_000, options.periodMs) })
          .then((found) => (instances = found))
          .catch(() => {})
          .finally(() => (running = false));
      }
      return instances;
    },
  };
}
