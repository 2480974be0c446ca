/**
 * Where a JetStream delivery stands — its stream sequence and how many
 * messages are pending after it — read from the reply (ack) subject by hand.
 * nats.js's `msg.info` splits the subject and builds an object of eleven
 * fields for the first access; a reader of a whole stream (whatif) needs two
 * numbers per message. The subject's two forms:
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
 *   $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
 */

/** What `readDelivery` fills in. */
export interface DeliveryPosition {
  seq: number;
  pending: number;
}

/** Positions of the dots of the subject being read (a delivery subject has at most 11). */
const dots = new Int32Array(16);

/** Fill `into` from a reply subject; false when it is not a JetStream ack subject (then `into` is unchanged). */
export function readDelivery(reply: string, into: DeliveryPosition): boolean {
  if (!reply.startsWith("$JS.ACK.")) return false;
  let count = 0;
  for (let i = 0; i < reply.length; i++) {
    if (reply.charCodeAt(i) !== 46) continue;
    if (count === dots.length) return false;
    dots[count++] = i;
  }
  const tokens = count + 1;
  // Token indexes of the stream sequence and the pending count.
  const seqAt = tokens === 9 ? 5 : tokens >= 11 ? 7 : -1;
  if (seqAt === -1) return false;
  const pendingAt = seqAt + 3;
  const seq = numberToken(reply, count, seqAt);
  const pending = numberToken(reply, count, pendingAt);
  if (Number.isNaN(seq) || Number.isNaN(pending)) return false;
  into.seq = seq;
  into.pending = pending;
  return true;
}

/** Token `k` (1-based past "$JS", so never the first) as a non-negative integer, or NaN. */
function numberToken(s: string, count: number, k: number): number {
  const start = dots[k - 1]! + 1;
  const stop = k < count ? dots[k]! : s.length;
  if (stop <= start) return Number.NaN;
  let v = 0;
  for (let i = start; i < stop; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}
