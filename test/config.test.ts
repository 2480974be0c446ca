import { describe, expect, it } from "vitest";
import { ConfigError, flagOf, loadConfig, redactConfig, redactUrl, unknownSettings } from "../src/config.js";
import { natsConnectOptions } from "../src/nats/connection.js";

describe("configuration", () => {
  it("has a default for everything and freezes the result", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ TORT_CONCURRENCY: "auto", TORT_CONCURRENCY_MIN: 4, TORT_CONCURRENCY_MAX: 1024, TORT_REFRESH_INTERVAL_MS: 60_000, TORT_OPS_HOST: "127.0.0.1", TORT_INPUT_STREAM: "FINGERPRINT_RESULTS" });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ TORT_CONCURRENCY: "0" }, /TORT_CONCURRENCY \(--concurrency\): must be `auto` or an integer from 1 to 4096/],
    [{ TORT_CONCURRENCY: "Auto" }, /TORT_CONCURRENCY \(--concurrency\): must be `auto` or an integer from 1 to 4096/],
    [{ TORT_CONCURRENCY_MIN: "64", TORT_CONCURRENCY_MAX: "32" }, /TORT_CONCURRENCY_MAX \(--concurrency-max\): must be at least TORT_CONCURRENCY_MIN/],
    [{ TORT_REFRESH_INTERVAL_MS: "500" }, /TORT_REFRESH_INTERVAL_MS \(--refresh-interval-ms\): must be 0 \(off\) or 1000\.\.86400000/],
    [{ DATABASE_URL: "postgres://x" }, /DATABASE_URL \(--database-url\): must be a mysql:/],
    [{ LOG_LEVEL: "loud" }, /LOG_LEVEL \(--log-level\)/],
    [{ TORT_DUPLICATE_WINDOW_MS: "60000" }, /TORT_DUPLICATE_WINDOW_MS \(--duplicate-window-ms\): must be at least .* = 192000/],
    [{ NATS_USER: "u" }, /NATS_PASSWORD \(--nats-password\): required with NATS_USER/],
    [{ NATS_TLS_CERT_FILE: "/c.pem" }, /give both or neither/],
    [{ TORT_ACK_WAIT_MS: "10000", TORT_PUBLISH_TIMEOUT_MS: "10000" }, /TORT_ACK_WAIT_MS \(--ack-wait-ms\): must be longer than TORT_PUBLISH_TIMEOUT_MS \(--publish-timeout-ms\)/],
    [{ TORT_MAX_INFLIGHT_BYTES: "1048576" }, /TORT_MAX_INFLIGHT_BYTES \(--max-inflight-bytes\): must be an integer from 2097152/],
  ])("rejects %j by name", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it.each([
    ["TORT_OPS_PORT", ""],
    ["TORT_REFRESH_INTERVAL_MS", ""],
    ["TORT_LEADER_WAIT_MS", " "],
    ["TORT_MIN_REFRESH_GAP_MS", ""],
    ["TORT_NAK_DELAY_MS", ""],
    ["TORT_CONCURRENCY", "0x40"],
    ["TORT_CONCURRENCY", "1e3"],
    ["TORT_CONCURRENCY", "+64"],
    ["TORT_CONCURRENCY", "64.0"],
    ["TORT_LEASE_MS", "-1"],
  ])("refuses %s=%j: only decimal digits are a number", (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`${key} \\(--`));
  });

  it("reads decimal digits as the number they say", () => {
    expect(loadConfig({ TORT_CONCURRENCY: "auto", TORT_CONCURRENCY_MIN: "8", TORT_CONCURRENCY_MAX: "8" })).toMatchObject({ TORT_CONCURRENCY: "auto", TORT_CONCURRENCY_MIN: 8, TORT_CONCURRENCY_MAX: 8 });
    expect(loadConfig({ TORT_CONCURRENCY: "0128", TORT_REFRESH_INTERVAL_MS: "0", TORT_OPS_PORT: "0" })).toMatchObject({ TORT_CONCURRENCY: 128, TORT_REFRESH_INTERVAL_MS: 0, TORT_OPS_PORT: 0 });
  });

  it("names each unknown or misspelled setting, with the one it was probably meant to be", () => {
    const warnings = unknownSettings({ TORT_CONCURENCY: "128", DATABSE_URL: "mysql://x", TORT_WHATEVER: "1", NATS_URL: "nats://a", PATH: "/bin", HOME: "/root", TORT_CONCURRENCY: "64" });
    expect(warnings).toEqual([
      "TORT_CONCURENCY is not a setting; did you mean TORT_CONCURRENCY? (it is ignored)",
      "DATABSE_URL is not a setting; did you mean DATABASE_URL? (it is ignored)",
      "TORT_WHATEVER is not a setting tortmatch knows (it is ignored)",
    ]);
    expect(unknownSettings({ TORT_CONCURENCY: "hunter2" }).join()).not.toContain("hunter2");
  });

  it("never echoes a rejected value", () => {
    expect(() => loadConfig({ TORT_CONCURRENCY: "hunter2" })).toThrow(/^(?![\s\S]*hunter2)/);
  });

  it("names flags after variables", () => {
    expect(flagOf("TORT_CONCURRENCY")).toBe("--concurrency");
    expect(flagOf("DATABASE_URL")).toBe("--database-url");
    expect(flagOf("NATS_TLS_CA_FILE")).toBe("--nats-tls-ca-file");
  });

  it("redacts passwords in URLs and secret variables", () => {
    expect(redactUrl("mysql://tort:s3cret@db:3306/rules")).toBe("mysql://tort:***@db:3306/rules");
    expect(redactUrl("nats://tok3n@n1:4222")).toBe("nats://***@n1:4222");
    expect(redactUrl("nats://n1:4222")).toBe("nats://n1:4222");
    // Parsed, not pattern-matched: a password holding @ : / and an empty user name.
    expect(redactUrl("mysql://tort:p@ss:w/rd@db:3306/rules")).not.toMatch(/p@ss|w\/rd/);
    expect(redactUrl("mysql://tort:p@ss@db:3306/rules")).toBe("mysql://tort:***@db:3306/rules");
    expect(redactUrl("mysql://:s3cret@db:3306/rules")).toBe("mysql://:***@db:3306/rules");
    expect(redactUrl("nats://u:pa@ss@n1:4222")).toBe("nats://u:***@n1:4222");
    expect(redactUrl("u:pw@n2:4222")).toBe("u:***@n2:4222");
    expect(redactUrl("mysql://root@127.0.0.1:3306/test")).toBe("mysql://root@127.0.0.1:3306/test");
    const shown = JSON.stringify(
      redactConfig(loadConfig({ DATABASE_URL: "mysql://tort:s3cret@db/r", NATS_URL: "nats://a:pw1@n1:4222,nats://n2:4222", NATS_USER: "u", NATS_PASSWORD: "pw2", NATS_TOKEN: "tk" })),
    );
    for (const secret of ["s3cret", "pw1", "pw2", '"tk"']) expect(shown).not.toContain(secret);
    expect(shown).toContain("nats://a:***@n1:4222,nats://n2:4222");
  });

  it("turns NATS settings into connection options", () => {
    expect(natsConnectOptions(loadConfig({ NATS_URL: "nats://a:4222,nats://b:4222", NATS_USER: "u", NATS_PASSWORD: "p" }))).toMatchObject({
      servers: ["nats://a:4222", "nats://b:4222"],
      user: "u",
      pass: "p",
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
    });
    expect(natsConnectOptions(loadConfig({ NATS_TOKEN: "t" })).token).toBe("t");
    expect(natsConnectOptions(loadConfig({ NATS_TLS_CA_FILE: "/ca.pem", NATS_TLS_CERT_FILE: "/c.pem", NATS_TLS_KEY_FILE: "/k.pem" })).tls).toEqual({
      caFile: "/ca.pem",
      certFile: "/c.pem",
      keyFile: "/k.pem",
    });
  });
});
