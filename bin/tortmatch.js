#!/usr/bin/env node
// The package's executable. Runs the compiled build (dist/, made by `npm run build`,
// which `npm ci` runs through `prepare`); without one, the TypeScript sources through
// tsx (which costs ~40 MB of RSS for its loader thread).
import { existsSync } from "node:fs";
import module from "node:module";

// V8's code cache for every module loaded from here on (Node 22.1+; kept under the OS temporary
// directory, keyed by file content): a CLI command then compiles nothing it compiled before, which
// takes about a third off its start-up. Without the API (older Node) it is simply not used.
module.enableCompileCache?.();

const compiled = new URL("../dist/src/cli/main.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
