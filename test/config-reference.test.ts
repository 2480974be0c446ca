import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_KEYS, flagOf } from "../src/config.js";
import { configurationReference } from "../src/config-reference.js";

describe("docs/configuration.md", () => {
  it("is what the settings' schema generates (run `npm run docs:config` after changing src/config.ts)", () => {
    const committed = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
    expect(committed).toBe(configurationReference());
  });

  it("lists every setting once, with its flag", () => {
    const text = configurationReference();
    for (const key of CONFIG_KEYS) {
      const rows = text.split("\n").filter((line) => line.startsWith(`| \`${key}\` |`));
      expect(rows, key).toHaveLength(1);
      expect(rows[0]).toContain(`\`${flagOf(key)}\``);
    }
  });
});
