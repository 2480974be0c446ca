import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { connectTest, uniqueNames } from "../support/nats.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest();
});
afterAll(async () => {
  await nc?.drain();
});

/** An instance registered on a consumer of its own, answering stats with `stats`; and the CLI's environment to find it. */
async function registerInstance(stats: () => Promise<unknown>) {
  const names = uniqueNames();
  const service = `tortmatch-${names.TORT_CONSUMER!.slice(10)}`;
  const consumer = names.TORT_CONSUMER!;
  const instance = await new Svcm(nc).add({ name: service, version: "0.0.0", metadata: { consumer }, statsHandler: stats });
  instance.addEndpoint("explain", { handler: () => {} });
  return { instance, env: { ...names, TORT_SERVICE_NAME: service, TORT_CONSUMER: consumer } };
}

describe("tortmatch fleet", () => {
  it("says the list may be incomplete when an instance answers a ping but not its stats in time", async () => {
    // A registered instance whose stats take longer than the command waits (a busy event loop, say).
    const { instance: slow, env } = await registerInstance(() => new Promise((resolve) => setTimeout(() => resolve({}), 4_000)));
    try {
      const run = await runCli(["fleet"], env);
      expect(run.code).toBe(0);
      expect(run.stderr).toContain(`the list may be incomplete: ${slow.info().id} answered a ping but not its stats in time`);
    } finally {
      await slow.stop();
    }
  });

  it("checks what another instance reports: a wrong type is shown as unknown, never breaks the table", async () => {
    const { instance: hostile, env } = await registerInstance(() =>
      Promise.resolve({ version: 7, state: { x: 1 }, role: ["leader"], limit: "lots", inFlight: -3, mode: "manual", minRttMs: "fast", rttMs: Number.NaN, loads: 1.5 }),
    );
    try {
      const json = await runCli(["fleet", "--json"], env);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual([
        expect.objectContaining({ version: null, state: "", role: "", limit: 0, inFlight: 0, mode: "fixed", minRttMs: null, rttMs: null, loads: 0 }),
      ]);
      const table = await runCli(["fleet"], env);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toContain(hostile.info().id);
    } finally {
      await hostile.stop();
    }
  });
});
