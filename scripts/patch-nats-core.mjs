#!/usr/bin/env node
// Applied on every install (package.json "postinstall"), idempotent.
//
// @nats-io/nats-core 3.4.0, lib/request.js, RequestOne.resolver: after a request's answer has
// resolved its promise, it calls cancel(), which rejects that (already settled) promise with a
// freshly built RequestError("cancelled") — an Error with a captured stack trace, built and thrown
// away after every successful request. Every verdict publish is a request (it awaits the PubAck),
// so this costs each message a stack capture: about 6% of the service's busy time in a profile of a
// 40,000-result drain (issue #9). The patch keeps what cancel() does that matters (stop the timer,
// leave the mux) and builds the error only when cancel() is called for real. Behaviour is otherwise
// unchanged: rejecting a settled promise is a no-op.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const MARK = "/* tortmatch patch: no RequestError per answered request */";
const FROM = `            this.deferred.resolve(msg);
        }
        this.cancel();
    }`;
const TO = `            this.deferred.resolve(msg);
        }
        ${MARK}
        if (this.timer) {
            this.timer.cancel();
        }
        this.mux.cancel(this);
    }`;

let file;
try {
  const require = createRequire(import.meta.url);
  file = join(dirname(require.resolve("@nats-io/nats-core/internal")), "request.js");
} catch {
  process.exit(0); // not installed (yet): nothing to patch
}
const text = readFileSync(file, "utf8");
if (text.includes(MARK)) process.exit(0);
const at = text.indexOf(FROM);
if (at === -1 || text.indexOf(FROM, at + 1) !== -1) {
  console.warn(`patch-nats-core: ${file} is not the expected @nats-io/nats-core 3.4.0 code; not patched (correct, only slower)`);
  process.exit(0);
}
writeFileSync(file, text.replace(FROM, TO));
console.log(`patch-nats-core: patched ${file}`);
