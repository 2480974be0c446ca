import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/ops/logger.js";
import { createClosers } from "../../src/service/closers.js";

describe("createClosers", () => {
  it("closes in the reverse order of opening, once, and runs every cleanup even when one fails", async () => {
    const closed: string[] = [];
    const parts = createClosers(createLogger("silent"));
    parts.add("first", () => void closed.push("first"));
    parts.add("second", async () => {
      closed.push("second");
      throw new Error("boom");
    });
    parts.add("third", async () => void closed.push("third"));
    const a = parts.closeAll();
    const b = parts.closeAll();
    expect(b).toBe(a);
    await a;
    expect(closed).toEqual(["third", "second", "first"]);
    await parts.closeAll();
    expect(closed).toHaveLength(3);
    expect(() => parts.add("late", () => {})).toThrow(/after closing began/);
  });
});
