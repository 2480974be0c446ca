/** isoClock: the text of now(), whatever the clock does (reused within a millisecond, never across). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoClock } from "../../src/pipeline.js";

describe("isoClock", () => {
  it("gives now().toISOString() for every reading: repeated, advancing and going back", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4_102_444_800_000 }), { minLength: 1, maxLength: 50 }), fc.array(fc.nat(3), { minLength: 1, maxLength: 50 }), (times, repeats) => {
        let at = 0;
        const clock = isoClock(() => new Date(at));
        times.forEach((t, i) => {
          for (let k = 0; k <= repeats[i % repeats.length]!; k++) {
            at = t + (k % 2); // within the same ms and the next one
            expect(clock()).toBe(new Date(at).toISOString());
          }
        });
      }),
    );
  });
});
