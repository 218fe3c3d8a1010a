// Real SIP participants for the browser tests: baresip driven over its
// ctrl_tcp interface (netstring JSON), tone WAV files for it to send, and
// the Goertzel check on the audio it received (dumped by its sndfile
// module). A port of crates/palaver/tests/common/mod.rs. Loopback only.
import { spawn, execFileSync } from "node:child_process";
import { createServer, connect } from "node:net";
import { createSocket } from "node:dgram";
import { mkdirSync, writeFileSync, readdirSync, readFileSync, openSync } from "node:fs";
import { join } from "node:path";

export const RATE = 8000;

// Whether baresip is installed. PALAVER_REQUIRE_PEERS=1 (set by
// scripts/test.sh) makes a missing peer an error instead of a skip.
export function haveBaresip() {
  try {
    execFileSync("sh", ["-c", "command -v baresip"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.PALAVER_REQUIRE_PEERS === "1") {
      throw new Error("baresip is required (PALAVER_REQUIRE_PEERS=1) but not installed");
    }
    return false;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function bindUdp(port) {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    s.once("error", () => resolve(null));
    s.bind(port, "127.0.0.1", () => resolve(s));
  });
}

function bindTcp(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(null));
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
}

// A UDP port on loopback whose next `span` ports are free for UDP and TCP
// too (baresip takes SIP on UDP and TCP, RTP on a range). Checked by
// binding, then released: good enough for a peer that wants fixed ports.
export async function freePorts(span = 1) {
  for (;;) {
    const first = await bindUdp(0);
    const port = first.address().port;
    first.close();
    if (port + span >= 65000) continue;
    const held = [];
    let ok = true;
    for (let p = port; p <= port + span && ok; p++) {
      const u = await bindUdp(p);
      const t = await bindTcp(p);
      if (u) held.push(() => u.close());
      if (t) held.push(() => t.close());
      ok = u !== null && t !== null;
    }
    held.forEach((close) => close());
    if (ok) return port;
  }
}

// A mono 16-bit PCM WAV (8 kHz) made of segments `{ freq, seconds }`;
// `freq: 0` is silence.
export function toneWav(path, segments, amplitude = 8000) {
  const total = segments.reduce((n, s) => n + Math.round(s.seconds * RATE), 0);
  const b = Buffer.alloc(44 + total * 2);
  b.write("RIFF", 0); b.writeUInt32LE(36 + total * 2, 4); b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(RATE, 24); b.writeUInt32LE(RATE * 2, 28); b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34); b.write("data", 36); b.writeUInt32LE(total * 2, 40);
  let i = 0;
  for (const s of segments) {
    const n = Math.round(s.seconds * RATE);
    for (let k = 0; k < n; k++, i++) {
      const v = s.freq ? Math.round(amplitude * Math.sin((2 * Math.PI * s.freq * k) / RATE)) : 0;
      b.writeInt16LE(v, 44 + 2 * i);
    }
  }
  writeFileSync(path, b);
}

// The samples of a 16-bit PCM WAV, also while its writer still has it open
// (the data length in the header is then still 0: read to the end).
export function readWav(path) {
  const bytes = readFileSync(path);
  let i = 12;
  let rate = RATE;
  while (i + 8 <= bytes.length) {
    const id = bytes.toString("ascii", i, i + 4);
    const len = bytes.readUInt32LE(i + 4);
    if (id === "fmt ") rate = bytes.readUInt32LE(i + 12);
    if (id === "data") {
      const end = len === 0 || i + 8 + len > bytes.length ? bytes.length : i + 8 + len;
      const n = Math.floor((end - i - 8) / 2);
      const s = new Int16Array(n);
      for (let k = 0; k < n; k++) s[k] = bytes.readInt16LE(i + 8 + 2 * k);
      return { samples: s, rate };
    }
    i += 8 + len + (len & 1);
  }
  return { samples: new Int16Array(0), rate };
}

// Amplitude of the `freq` component of `samples` (Goertzel): about the
// peak value of a pure tone at that frequency, near 0 when it is absent.
export function toneAmplitude(samples, rate, freq) {
  if (samples.length === 0) return 0;
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0, s2 = 0;
  for (const x of samples) {
    const s0 = x + k * s1 - s2;
    s2 = s1; s1 = s0;
  }
  const power = Math.max(0, s1 * s1 + s2 * s2 - k * s1 * s2);
  return (2 * Math.sqrt(power)) / samples.length;
}

export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const x of samples) sum += x * x;
  return Math.sqrt(sum / samples.length);
}

// One baresip process with one account, no registration: it calls the
// server's trunk side directly, as a carrier would.
export class Baresip {
  // `user` is the caller number the room will show, `name` its display
  // name, `audio` the WAV it sends (looped by nothing: make it long).
  static async start(dir, { user, name, server, audio }) {
    const conf = join(dir, `baresip-${user}`);
    const rec = join(conf, "rec");
    mkdirSync(rec, { recursive: true });
    const sipPort = await freePorts(1);
    const ctrlPort = await freePorts(0);
    const rtp = await freePorts(10);
    const config = [
      ["poll_method", "epoll"], ["sip_listen", `127.0.0.1:${sipPort}`],
      ["call_local_timeout", "120"], ["call_max_calls", "4"],
      ["audio_player", "aubridge,nil"], ["audio_source", `aufile,${audio}`],
      ["audio_alert", "aubridge,nil"], ["audio_level", "no"],
      ["ausrc_format", "s16"], ["auplay_format", "s16"], ["auenc_format", "s16"], ["audec_format", "s16"],
      ["audio_buffer", "20-160"], ["rtp_tos", "0"], ["rtp_ports", `${rtp}-${rtp + 10}`],
      ["rtcp_mux", "no"], ["jitter_buffer_delay", "5-10"], ["rtp_stats", "yes"],
      ["net_interface", "127.0.0.1"], ["module_path", "/usr/lib/baresip/modules"],
      ["module", "g711.so"], ["module", "sndfile.so"], ["module", "aufile.so"], ["module", "aubridge.so"],
      ["module_tmp", "uuid.so"], ["module_tmp", "account.so"],
      ["module_app", "menu.so"], ["module_app", "ctrl_tcp.so"],
      ["ctrl_tcp_listen", `127.0.0.1:${ctrlPort}`], ["snd_path", rec], ["statmode_default", "off"],
    ].map(([k, v]) => `${k}\t${v}`).join("\n") + "\n";
    writeFileSync(join(conf, "config"), config);
    writeFileSync(
      join(conf, "accounts"),
      `"${name}" <sip:${user}@${server}>;regint=0;answermode=manual;audio_codecs=PCMU,PCMA\n`,
    );
    writeFileSync(join(conf, "contacts"), "");
    const log = openSync(join(conf, "baresip.log"), "w");
    const child = spawn("baresip", ["-f", conf], { stdio: ["ignore", log, log] });
    const deadline = Date.now() + 10_000;
    let sock;
    for (;;) {
      sock = await new Promise((resolve) => {
        const s = connect(ctrlPort, "127.0.0.1");
        s.once("connect", () => resolve(s));
        s.once("error", () => resolve(null));
      });
      if (sock) break;
      if (child.exitCode !== null) throw new Error(`baresip exited; see ${conf}/baresip.log`);
      if (Date.now() > deadline) throw new Error(`baresip ctrl_tcp did not come up; see ${conf}/baresip.log`);
      await sleep(50);
    }
    return new Baresip(child, sock, conf, user, server);
  }

  constructor(child, sock, dir, user, server) {
    this.child = child;
    this.sock = sock;
    this.dir = dir;
    this.user = user;
    this.server = server;
    this.events = [];
    this.token = 0;
    this.buf = Buffer.alloc(0);
    sock.on("data", (d) => this.#receive(d));
    sock.on("error", () => {});
  }

  // Netstrings: "<len>:<json>,".
  #receive(data) {
    this.buf = Buffer.concat([this.buf, data]);
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) return;
      const len = Number(this.buf.toString("ascii", 0, colon));
      if (!Number.isInteger(len)) { this.buf = Buffer.alloc(0); return; }
      if (this.buf.length < colon + 1 + len + 1) return;
      const body = this.buf.toString("utf8", colon + 1, colon + 1 + len);
      this.buf = this.buf.subarray(colon + 1 + len + 1);
      try { this.events.push(JSON.parse(body)); } catch { /* not JSON: ignore */ }
    }
  }

  command(command, params = "") {
    this.token += 1;
    const msg = JSON.stringify({ command, params, token: String(this.token) });
    this.sock.write(`${Buffer.byteLength(msg)}:${msg},`);
  }

  // Resolves with the first event of type `kind` (seen before or after
  // this call), or throws after `timeout` ms.
  async waitEvent(kind, timeout = 10_000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const e = this.events.find((v) => v.event === true && v.type === kind);
      if (e) return e;
      if (Date.now() > deadline) {
        throw new Error(`${this.user}: no ${kind} in ${timeout} ms; saw ${this.events.map((v) => v.type).join(",")}`);
      }
      await sleep(50);
    }
  }

  async dial(number) {
    this.command("dial", `sip:${number}@${this.server}`);
    await this.waitEvent("CALL_ESTABLISHED");
  }

  hangup() {
    this.command("hangup");
  }

  // The file the sndfile module writes this call's received audio into.
  receivedWav() {
    const rec = join(this.dir, "rec");
    const wavs = readdirSync(rec).filter((f) => f.endsWith("-dec.wav")).sort();
    if (wavs.length === 0) throw new Error(`${this.user}: no received audio in ${rec}`);
    return join(rec, wavs[wavs.length - 1]);
  }

  // Samples received so far (a position to analyse from later).
  receivedLength() {
    return readWav(this.receivedWav()).samples.length;
  }

  // Waits until `seconds` of audio arrived after sample `from`; returns
  // those samples.
  async receivedAfter(from, seconds, timeout = 20_000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const { samples, rate } = readWav(this.receivedWav());
      if (samples.length >= from + seconds * rate) {
        return { samples: samples.subarray(from, from + Math.round(seconds * rate)), rate };
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.user}: only ${(samples.length - from) / rate} s of audio after ${from} in ${timeout} ms`);
      }
      await sleep(100);
    }
  }

  async stop() {
    try { this.command("quit"); } catch { /* already gone */ }
    const exited = new Promise((r) => (this.child.exitCode !== null ? r() : this.child.once("exit", r)));
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
    this.sock.destroy();
  }
}
