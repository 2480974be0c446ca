/**
 * Deployments never mix (spec section 9): one name gives every stream, consumer, bucket, subject and
 * service name, and the identity of the rules an instance serves is the deployment's, not its
 * database URL's host or port.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, DEPLOYMENT_NAME_KEYS, loadConfig } from "../../src/config.js";
import { databaseIdentity } from "../../src/fleet/rules-bucket.js";

describe("deployments", () => {
  it("default: the spec's names", () => {
    expect(loadConfig({})).toMatchObject({
      TORT_DEPLOYMENT: "default",
      TORT_INPUT_STREAM: "FINGERPRINT_RESULTS",
      TORT_INPUT_SUBJECTS: "fingerprint.results.>",
      TORT_CONSUMER: "tortmatch",
      TORT_VERDICT_STREAM: "TORT_VERDICTS",
      TORT_VERDICT_SUBJECT_PREFIX: "tort.verdicts",
      TORT_DEADLETTER_SUBJECT: "tort.deadletter",
      TORT_RULES_CHANGED_SUBJECT: "tort.rules.changed",
      TORT_EXPLAIN_SUBJECT: "tort.explain",
      TORT_CONFIG_BUCKET: "tort_config",
      TORT_RULES_BUCKET: "tort_rules",
      TORT_SNAPSHOT_BUCKET: "tort_snapshots",
      TORT_SERVICE_NAME: "tortmatch",
    });
  });

  it("one setting gives two deployments on one NATS no name in common; a name set one by one wins", () => {
    const a = loadConfig({ TORT_DEPLOYMENT: "eu-1" });
    const b = loadConfig({ TORT_DEPLOYMENT: "us_2", TORT_INPUT_STREAM: "RESULTS_US" });
    const d = loadConfig({});
    for (const key of DEPLOYMENT_NAME_KEYS) {
      expect(new Set([a[key], b[key], d[key]]).size, key).toBe(3);
    }
    expect(a).toMatchObject({ TORT_CONSUMER: "tortmatch_eu-1", TORT_INPUT_STREAM: "FINGERPRINT_RESULTS_EU_1", TORT_RULES_CHANGED_SUBJECT: "tort.eu-1.rules.changed", TORT_SERVICE_NAME: "tortmatch-eu-1" });
    expect(b.TORT_INPUT_STREAM).toBe("RESULTS_US");
    expect(() => loadConfig({ TORT_DEPLOYMENT: "EU 1" })).toThrow(ConfigError);
    expect(() => loadConfig({ TORT_DEPLOYMENT: "" })).toThrow(/TORT_DEPLOYMENT/);
  });

  it("the rules' identity is the deployment's and its database's name: not the host or port it is reached by", () => {
    const url = "mysql://tort:pw@db:3306/rules";
    // Two Kubernetes namespaces, both reaching their own `db:3306/rules`: two deployments, two identities.
    expect(databaseIdentity("ns-a", url)).not.toBe(databaseIdentity("ns-b", url));
    // One deployment reaching its database directly and through a proxy: one identity.
    expect(databaseIdentity("ns-a", url)).toBe(databaseIdentity("ns-a", "mysql://tort:other@127.0.0.1:39999/rules"));
    // Another database of the same deployment (a stray DATABASE_URL): never served as its rules.
    expect(databaseIdentity("ns-a", url)).not.toBe(databaseIdentity("ns-a", "mysql://tort:pw@db:3306/rules_staging"));
  });
});
