// Helpers for the browser tests: start a server binary on loopback ports the
// OS picks, wait for its ready file, launch headless Chromium.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SHOTS = join(ROOT, "docs", "screenshots");

// Starts `argv` with READY replaced by a ready-file path; resolves once the
// file exists with the parsed JSON and a stop function.
export async function startServer(argv, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "palaver-web-"));
  const ready = join(dir, "ready.json");
  const args = argv.map((a) => a.replaceAll("TMP", dir).replaceAll("READY", ready));
  const child = spawn(args[0], args.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (!existsSync(ready)) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`server not ready in 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = JSON.parse(readFileSync(ready, "utf8"));
  const stop = async () => {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  };
  return { info, dir, stop, output: () => output };
}

// Playwright's `launch` always gives Chromium a fresh temporary
// --user-data-dir of its own (and refuses one passed in `args`).
export async function launchBrowser() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
    },
  };
}

// A small PCM WAV file: a 440 Hz tone, 8 kHz mono (silence is refused).
export function wav(samples = 4000) {
  const data = samples * 2;
  const b = Buffer.alloc(44 + data);
  b.write("RIFF", 0); b.writeUInt32LE(36 + data, 4); b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(8000, 24); b.writeUInt32LE(16000, 28); b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34); b.write("data", 36); b.writeUInt32LE(data, 40);
  for (let i = 0; i < samples; i++) {
    b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), 44 + 2 * i);
  }
  return b;
}
