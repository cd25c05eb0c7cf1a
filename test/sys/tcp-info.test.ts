import t from "tap";
import { native, parseTcpInfo, TCP_INFO_FIELDS, TCP_INFO_MAX_SIZE } from "../../src/sys/index.js";

t.test("the parser's layout agrees with the build's kernel headers", async (t) => {
  const header = native.tcpInfoHeaderLayout();
  const size = header.$size as number;
  t.ok(size >= 104 && size <= TCP_INFO_MAX_SIZE, `header struct is ${size} bytes`);
  let compared = 0;
  for (const [name, offset] of Object.entries(header)) {
    if (name === "$size") continue;
    const field = TCP_INFO_FIELDS.find((f) => f.name === name);
    t.ok(field, `field ${name} is known to the parser`);
    t.equal(field?.offset, offset, `${name} at ${offset}`);
    compared++;
  }
  t.ok(compared >= 50, `${compared} fields compared`);
});

t.test("fields past what the kernel returned are left out, never guessed", async (t) => {
  const bytes = Buffer.alloc(TCP_INFO_MAX_SIZE, 0xff);
  bytes.writeUInt8(1, 0);
  bytes.writeUInt8(4, 1);
  bytes.writeUInt8(0x9a, 6);
  bytes.writeUInt32LE(204000, 8);
  const info = parseTcpInfo(bytes, 104);
  t.equal(info.size, 104);
  t.equal(info.stateName, "ESTABLISHED");
  t.equal(info.caStateName, "Loss");
  t.equal(info.snd_wscale, 0xa, "low nibble");
  t.equal(info.rcv_wscale, 0x9, "high nibble");
  t.equal(info.rto, 204000);
  t.equal(info.total_retrans, 0xffffffff);
  t.notOk("pacing_rate" in info, "pacing_rate starts at 104: not returned");
  const full = parseTcpInfo(bytes, TCP_INFO_MAX_SIZE);
  t.equal(full.options2, 0xffffff, "24-bit bitfield");
  t.equal(full.accecn_fail_mode, 0xf);
});

t.test("an unknown state number is named as such", async (t) => {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt8(99, 0);
  t.equal(parseTcpInfo(bytes, 8).stateName, "UNKNOWN(99)");
});
