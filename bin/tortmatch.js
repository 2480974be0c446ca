#!/usr/bin/env node
// The package's executable. Runs the compiled build (dist/, made by `npm run build`,
// which `npm ci` runs through `prepare`); without one, the TypeScript sources through
// tsx (which costs ~40 MB of RSS for its loader thread).
import { existsSync } from "node:fs";

const compiled = new URL("../dist/src/cli/main.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
