// What tcp_send_reset shows of an RST, by where it was sent from and whether the kernel traces every RST (6.10+).
import t from "tap";
import { expectedResetSeen, NO_REASON, sendResetTrace } from "../../src/model/close.js";

t.test("6.10+: every RST traced, with its reason", async (t) => {
  t.same(sendResetTrace("no socket", "NO_SOCKET", true), { traced: true, reason: "NO_SOCKET" });
  t.equal(expectedResetSeen("listener", "TCP_FLAGS", true), "TCP_FLAGS");
});

t.test("before 6.10: only full sockets traced, and no reason field", async (t) => {
  t.same(sendResetTrace("no socket", "NO_SOCKET", false), { traced: false, reason: undefined });
  t.equal(expectedResetSeen("socket", "TCP_STATE", false), NO_REASON);
  t.equal(expectedResetSeen("listener", "TCP_FLAGS", false), NO_REASON);
  t.equal(expectedResetSeen("no socket", "NO_SOCKET", false), "none");
});
