#!/usr/bin/env node
// Applied on every install (package.json "postinstall"), idempotent. Two patches of
// @nats-io/nats-core 3.4.0, both for issue #9; each is skipped (with a warning, and the client then
// only slower) when its file is not the code it was written against.
//
// 1. lib/request.js, RequestOne.resolver: after a request's answer has resolved its promise, it
//    calls cancel(), which rejects that (already settled) promise with a freshly built
//    RequestError("cancelled") — an Error with a captured stack trace, built and thrown away after
//    every successful request. Every verdict publish is a request (it awaits the PubAck), so this
//    costs each message a stack capture: about 6% of the service's busy time in a profile of a
//    40,000-result drain. The patch keeps what cancel() does that matters (stop the timer, leave
//    the mux) and builds the error only when cancel() is called for real. Behaviour is otherwise
//    unchanged: rejecting a settled promise is a no-op.
//
// 2. lib/protocol.js, sendCommand: the client writes what it has queued to the socket in a
//    microtask after the first command queued. A message handler that awaits anything ends its
//    microtask run, so each message's publish and ack went out in a socket write of their own:
//    0.93 writes per message in a 50,000-result drain, the largest single cost in a profile
//    (writeBuffer, 19–28% of the busy time). The patch flushes in setImmediate instead: everything
//    queued while the event loop handles one batch of socket reads leaves in one write (0.06 writes
//    per message). A command waits at most for the rest of the current loop turn; the inline flush
//    at the pending limit is unchanged, and close() now writes what is queued before it closes the
//    socket (the stock client loses a publish made just before close(), test/ingest/nats-core-patch).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const PATCHES = [
  {
    file: "request.js",
    mark: "/* tortmatch patch: no RequestError per answered request */",
    edits: [
      {
        from: `            this.deferred.resolve(msg);
        }
        this.cancel();
    }`,
        to: `            this.deferred.resolve(msg);
        }
        /* tortmatch patch: no RequestError per answered request */
        if (this.timer) {
            this.timer.cancel();
        }
        this.mux.cancel(this);
    }`,
      },
    ],
  },
  {
    file: "protocol.js",
    mark: "/* tortmatch patch: one socket write per loop turn */",
    edits: [
      {
        from: `        if (len === 0) {
            queueMicrotask(() => {
                this.flushPending();
            });
        }`,
        to: `        if (len === 0) {
            /* tortmatch patch: one socket write per loop turn */
            setImmediate(() => {
                this.flushPending();
            });
        }`,
      },
      {
        from: `        this.whyClosed = new Error("close trace").stack || "";`,
        to: `        this.whyClosed = new Error("close trace").stack || "";
        this.flushPending();`,
      },
    ],
  },
];

let lib;
try {
  const require = createRequire(import.meta.url);
  lib = dirname(require.resolve("@nats-io/nats-core/internal"));
} catch {
  process.exit(0); // not installed (yet): nothing to patch
}
for (const patch of PATCHES) {
  const file = join(lib, patch.file);
  let text = readFileSync(file, "utf8");
  if (text.includes(patch.mark)) continue;
  const unexpected = patch.edits.find(({ from }) => {
    const at = text.indexOf(from);
    return at === -1 || text.indexOf(from, at + 1) !== -1;
  });
  if (unexpected !== undefined) {
    console.warn(`patch-nats-core: ${file} is not the expected @nats-io/nats-core 3.4.0 code; not patched (correct, only slower)`);
    continue;
  }
  for (const { from, to } of patch.edits) text = text.replace(from, to);
  writeFileSync(file, text);
  console.log(`patch-nats-core: patched ${file}`);
}
