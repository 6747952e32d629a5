/**
 * Pause and resume from the console, against the real broker, a running OrdemDeProducao and real
 * Chromium: as replay and purge, they need the operator role, the CSRF token and a console that
 * is not read-only, and a pause needs a reason; each is one audit entry naming the console user.
 * The overview shows the fleet's state (since, by whom, why) and how many instances hold off,
 * whether the change came from the console or from `deno task ctl`.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { FleetControl } from "../lib/console/control.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { launchChromium, screenshotDir } from "../testing/browser.ts";
import {
  type BrokerContext,
  fastPolicy,
  RABBITMQ_URL,
  runScript,
  tempDir,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import {
  basic,
  call,
  FAST_RETRY,
  type RunningConsole,
  startConsole,
  startOrdem,
} from "../testing/console.ts";

const policy = fastPolicy(2, 100);
const tiers = { retryDelays: retryDelays(policy) };

/** The console with two users: olga, an operator, and vera, a viewer. */
async function startConsoleWithUsers(
  ctx: BrokerContext,
  dir: string,
  metricsPort: number,
  args: string[] = [],
): Promise<RunningConsole> {
  await Deno.writeTextFile(
    join(dir, "users"),
    "olga:operator:op-secret\nvera:viewer:view-secret\n",
  );
  return await startConsole(ctx, dir, {
    metricsPort,
    args,
    env: { ...FAST_RETRY, CONSOLE_USERS_FILE: join(dir, "users") },
  });
}

/** OrdemDeProducao serving its metrics on `port`, ready. */
const ordemOn = (ctx: BrokerContext, dir: string, port: number) =>
  startOrdem(ctx, { ledgerPath: join(dir, "ledger.sqlite"), port, id: "ordem-console" });

interface PauseShown {
  state: { paused: boolean; by?: string; reason?: string; since?: string } | null;
  instances: number | null;
  paused: number | null;
}

async function pauseShown(url: string, headers: Record<string, string>): Promise<PauseShown> {
  return (await call(url, "/api/overview", headers)).json.pause as PauseShown;
}

Deno.test("pause and resume from the console's API: operator, CSRF and a reason needed; the overview and the instance follow; one audit entry each", async () => {
  await withTopology("console-pause", tiers, async (ctx) => {
    await using dir = await tempDir();
    const metricsPort = freePort();
    await using _ordem = await ordemOn(ctx, dir.path, metricsPort);
    const console = await startConsoleWithUsers(ctx, dir.path, metricsPort);
    await using _console = console.peer;
    const olga = basic("olga", "op-secret");
    const vera = basic("vera", "view-secret");
    const csrf = async (who: Record<string, string>, url = console.url) =>
      (await call(url, "/api/session", who)).json.csrf as string;

    const shown = await pauseShown(console.url, vera);
    assert.equal(shown.state?.paused, false);
    assert.equal(shown.instances, 1);
    assert.equal(shown.paused, 0);

    const refused = [
      [vera, await csrf(vera), { action: "pause", reason: "x" }, 403, /operator role/],
      [olga, "wrong", { action: "pause", reason: "x" }, 403, /CSRF/],
      [olga, await csrf(olga), { action: "pause" }, 400, /say why/],
      [olga, await csrf(olga), { action: "stop", reason: "x" }, 400, /pause or resume/],
    ] as const;
    for (const [who, token, body, status, why] of refused) {
      const answer = await call(
        console.url,
        "/api/control",
        { ...who, "x-csrf-token": token },
        body,
      );
      assert.equal(answer.status, status, JSON.stringify(answer.json));
      assert.match(String(answer.json.error), why);
    }
    assert.equal((await pauseShown(console.url, vera)).state?.paused, false, "nothing changed");

    const paused = await call(console.url, "/api/control", {
      ...olga,
      "x-csrf-token": await csrf(olga),
    }, { action: "pause", reason: "MES upgrade" });
    assert.equal(paused.status, 200, JSON.stringify(paused.json));
    assert.equal(paused.json.paused, true);
    assert.equal(paused.json.by, "olga (console)");
    const metrics = `http://127.0.0.1:${metricsPort}/metrics`;
    await waitFor(
      "the instance paused",
      async () =>
        /^productionorder_paused\{[^}]*\} 1$/m.test(await (await fetch(metrics)).text()) ||
        undefined,
    );
    const during = await waitFor("the overview shows it", async () => {
      const p = await pauseShown(console.url, vera);
      return p.paused === 1 ? p : undefined;
    });
    assert.equal(during.state?.paused, true);
    assert.equal(during.state?.reason, "MES upgrade");
    assert.equal(during.state?.by, "olga (console)");

    // A resume from ctl reaches the console's overview too.
    const resumed = await runScript("ctl.ts", ["resume", "--operator", "carl", "--wait", "0"], {
      TOPOLOGY_PREFIX: ctx.topo.prefix,
      DLQ_AUDIT_LOG: join(dir.path, "audit.jsonl"),
    });
    assert.equal(resumed.code, 0, resumed.stderr);
    await waitFor("the overview shows the resume", async () => {
      const p = await pauseShown(console.url, vera);
      return p.state?.paused === false && p.paused === 0 ? p : undefined;
    });

    // Read-only: refused.
    await console.peer.stop();
    const readOnly = await startConsoleWithUsers(ctx, dir.path, metricsPort, ["--read-only"]);
    await using _readOnly = readOnly.peer;
    const denied = await call(readOnly.url, "/api/control", {
      ...olga,
      "x-csrf-token": await csrf(olga, readOnly.url),
    }, { action: "pause", reason: "x" });
    assert.equal(denied.status, 403);
    assert.match(String(denied.json.error), /read-only/);

    const audit = (await Deno.readTextFile(join(dir.path, "audit.jsonl"))).trim().split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(audit.map((e) => [e.action, e.who, e.why]), [
      ["pause", "olga (console)", "MES upgrade"],
      ["resume", "carl", ""],
    ]);
  });
});

Deno.test("in Chromium, the overview's Pause button asks why, pauses the fleet, shows since when, by whom and why, and Resume ends it", async () => {
  await withTopology("console-pause-ui", tiers, async (ctx) => {
    await using dir = await tempDir();
    const shots = await screenshotDir(dir.path);
    const metricsPort = freePort();
    await using _ordem = await ordemOn(ctx, dir.path, metricsPort);
    const console = await startConsoleWithUsers(ctx, dir.path, metricsPort);
    await using _console = console.peer;
    await using browser = await launchChromium();
    const context = await browser.newContext({
      viewport: { width: 1280, height: 700 },
      httpCredentials: { username: "olga", password: "op-secret" },
    });
    const page = await context.newPage();
    await page.goto(`${console.url}#/overview`);
    const state = page.locator("[data-testid=pause-state]");
    await state.filter({ hasText: "Taking orders" }).waitFor();
    await page.locator("[data-action=pause]").click();
    await page.locator("[data-testid=pause-reason]").fill("ERP maintenance window");
    await page.locator("#pause-ok").click();
    await state.filter({ hasText: /Paused since .* by olga \(console\): ERP maintenance window/ })
      .waitFor({ timeout: 10_000 });
    await page.locator("[data-testid=pause-instances]").filter({
      hasText: "1 of 1 instance(s) holding off",
    }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(shots, "overview-paused.png") });
    await page.locator("[data-action=resume]").click();
    await page.locator("#confirm-ok").click();
    await state.filter({ hasText: /Taking orders \(resumed .* by olga \(console\)\)/ }).waitFor({
      timeout: 10_000,
    });
    const audit = (await Deno.readTextFile(join(dir.path, "audit.jsonl"))).trim().split("\n");
    assert.equal(audit.length, 2);
  });
});

/** Whether the control plane's exchange exists, by a passive declare on a channel of its own. */
async function controlExchangeExists(broker: Broker, exchange: string): Promise<boolean> {
  const channel = await broker.channel();
  return await channel.checkExchange(exchange).then(
    () => true,
    () => false,
  ).finally(() => channel.close().catch(() => {}));
}

Deno.test("the console's ear on the control plane declares nothing (a --read-only console neither): it says there is no control plane yet", async () => {
  await withTopology("console-nodeclare", tiers, async (ctx) => {
    await using dir = await tempDir();
    await using broker = await Broker.connect(RABBITMQ_URL, { name: "test console-nodeclare" });
    await using control = new FleetControl({
      broker: () => Promise.resolve(broker),
      topology: ctx.topo,
      auditLog: join(dir.path, "audit.jsonl"),
    });
    const error = await control.state().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof Error, "no state without a control plane");
    assert.match(error.message, /no control plane/);
    assert.equal(await controlExchangeExists(ctx.broker, ctx.topo.control.exchange), false);
  });
});
