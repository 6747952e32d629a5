/**
 * Headless Chromium for the console's tests: Debian's `chromium`, driven by playwright-core. A
 * test that cannot start it fails (scripts/services.sh --browser installs it).
 *
 * @module
 */

import { type Browser, chromium } from "playwright-core";

/** Where Debian installs Chromium; `CHROMIUM_PATH` names another. */
export const CHROMIUM_PATH = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Options of {@linkcode launchChromium}. */
export interface ChromiumOptions {
  /**
   * More command-line switches, e.g. `--host-resolver-rules=MAP evil.test 127.0.0.1` to have a
   * host name resolve to this machine (a DNS-rebinding page).
   * @default {[]}
   */
  readonly args?: readonly string[];
}

/**
 * Starts headless Chromium with a fresh profile and no background traffic (this machine has no
 * internet). Close it with `await using`.
 */
export async function launchChromium(
  options: ChromiumOptions = {},
): Promise<Browser & AsyncDisposable> {
  try {
    await Deno.stat(CHROMIUM_PATH);
  } catch {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: run scripts/services.sh --browser (apt-get install chromium)`,
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...(options.args ?? []),
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/**
 * Where the console's tests put their screenshots: `SCREENSHOT_DIR` (docs/console for the
 * committed ones: `deno task docs:screenshots`), else `fallback` (the test's own temporary folder).
 */
export async function screenshotDir(fallback: string): Promise<string> {
  const dir = Deno.env.get("SCREENSHOT_DIR") ?? fallback;
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}
