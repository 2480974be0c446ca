/**
 * This instance in the NATS service framework: registered for discovery (`tortmatch fleet`, its
 * stats), with the explain endpoint (one instance of the queue group answers each request, with the
 * snapshot it serves). Registered at start, stopped when the service stops.
 */
import { Svcm, type Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { fromCallback } from "xstate";
import type { InstanceStats } from "../fleet/discover-fleet.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import { createExplainQueue } from "../ops/explain-endpoint.js";
import { TORTMATCH_VERSION } from "../version.js";

export interface RegistrationSettings {
  readonly serviceName: string;
  readonly consumer: string;
  readonly inputStream: string;
  readonly explainSubject: string;
}

export function registerService(nc: NatsConnection, s: RegistrationSettings, stats: () => InstanceStats): Promise<Service> {
  return new Svcm(nc).add({
    name: s.serviceName,
    version: TORTMATCH_VERSION,
    description: "matches recognition results against the tort rules",
    metadata: { consumer: s.consumer, input_stream: s.inputStream },
    queue: s.consumer,
    statsHandler: async () => stats(),
  });
}

/** The explain endpoint, as an actor: added when it starts, removed when it stops. */
export function explainEndpoint(svc: Service, nc: NatsConnection, s: RegistrationSettings, o: { snapshot: () => RuleSnapshot | null; stats: () => InstanceStats }) {
  return fromCallback(() => {
    // The service's own metadata is frozen by the framework; the endpoint's is read when an INFO is
    // answered, so its getters make `$SRV.INFO` carry the live state too (as the stats do).
    const live = (read: (s: InstanceStats) => string | number | null) => String(read(o.stats()) ?? "");
    const metadata = {
      get version() { return live((i) => i.version); },
      get state() { return live((i) => i.state); },
      get role() { return live((i) => i.role); },
      get in_flight() { return live((i) => i.inFlight); },
      get limit() { return live((i) => i.limit); },
      get concurrency() { return live((i) => i.mode); },
    } as unknown as Record<string, string>;
    const explainer = createExplainQueue({ snapshot: o.snapshot, maxReplyBytes: () => nc.info?.max_payload ?? 1024 * 1024 });
    const endpoint = svc.addEndpoint("explain", {
      subject: s.explainSubject,
      queue: s.consumer,
      metadata,
      handler: (_err, msg) => {
        if (msg.reply) explainer.ask(msg.data, (reply) => msg.respond(reply));
      },
    });
    return () => {
      explainer.stop();
      void endpoint.stop();
    };
  });
}
