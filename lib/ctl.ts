/**
 * `deno task ctl pause|resume|status`: pauses or resumes every OrdemDeProducao through the
 * broker's control plane (control_store.ts), or says whether the fleet is paused; then collects,
 * for `--wait` ms, the answers of the running instances (each answers once it applied a change,
 * or when asked who is there) and prints them, or JSON. Each pause and resume is appended to the
 * audit trail (the console's too) as soon as the broker confirmed it, before the answers are
 * collected; one the broker did not confirm is audited with what the state read back says.
 * `status` declares nothing: without a control plane it says so.
 *
 * @module
 */

import { appendPauseAudit, currentOperator } from "./audit.ts";
import type { CtlConfig } from "./config.ts";
import { describePause, type InstanceAnswer, NEVER_PAUSED, type PauseState } from "./control.ts";
import { brokerUserOf, changeAudited, changeConnections, ControlClient } from "./control_store.ts";
import { controlExists, declareControl } from "./control_topology.ts";
import { setupLogging } from "./log.ts";
import { EXIT } from "./main.ts";
import { connectFirst } from "./reconnect.ts";

/** An instance's answer, and how long after the change (or the question) it came. */
export interface Answered extends InstanceAnswer {
  /** Milliseconds from the change's publish (or the ping's) to the answer. */
  readonly afterMs: number;
}

/** What `ctl` found, as `--json` prints it. */
export interface CtlReport {
  /** The fleet's state now. */
  readonly state: PauseState;
  /** For pause and resume: the state before. */
  readonly before?: PauseState;
  /** The instances that answered within `--wait`, by instance id. */
  readonly instances: readonly Answered[];
  /** For status: false when the broker has no control plane (nothing was ever paused). */
  readonly controlPlane?: boolean;
}

/** Runs `deno task ctl`; returns the exit code. */
export async function runCtl(
  config: CtlConfig,
  signal: AbortSignal,
  print: (line: string) => void = (line) => console.log(line),
): Promise<number> {
  setupLogging({ level: config.logLevel });
  const connected = await connectFirst(config.urls, {
    name: `ctl ${config.verb}`,
    tls: config.tls,
  });
  await using broker = connected.broker;
  const topo = config.topology;
  if (config.verb === "status") {
    // Only looks: declaring here could make a control plane the fleet's own declare refuses.
    if (!(await controlExists(broker, topo))) {
      const report: CtlReport = { state: NEVER_PAUSED, instances: [], controlPlane: false };
      if (config.json) print(JSON.stringify(report, null, 2));
      else {
        print(
          `no control plane on this broker (${topo.control.exchange}): nothing was ever paused ` +
            `here; OrdemDeProducao declares it when it starts, ctl pause and resume too`,
        );
      }
      return EXIT.ok;
    }
  } else {
    await declareControl(broker, topo);
  }
  const answers = new Map<string, Answered>();
  let askedAt = performance.now();
  await using client = await ControlClient.open(broker, topo, {
    userId: brokerUserOf(config.urls[connected.index]),
    // Each change on a connection of its own, dropped at its deadline: one the broker blocks (a
    // resource alarm) would otherwise hold the control plane's lock while the alarm lasts.
    connect: changeConnections(config.urls, { name: `ctl ${config.verb} change`, tls: config.tls }),
    ...(config.waitMs > 0
      ? {
        onAnswer: (answer: InstanceAnswer) => {
          answers.set(answer.instanceId, { ...answer, afterMs: performance.now() - askedAt });
        },
      }
      : {}),
  });
  let report: CtlReport;
  if (config.verb === "status") {
    const state = await client.read();
    askedAt = performance.now();
    if (config.waitMs > 0) await client.ping();
    await pause(config.waitMs, signal);
    report = { state, instances: sorted(answers) };
  } else {
    const who = config.operator ?? currentOperator();
    askedAt = performance.now();
    // Audited once confirmed (or, unconfirmed, with what the state read back says), before the
    // answers are collected: a ctl stopped while it waits leaves no change unaudited.
    const { before, after } = await changeAudited(
      client,
      {
        paused: config.verb === "pause",
        by: who,
        reason: config.reason ?? "",
      },
      (state, effect, inEffect) =>
        appendPauseAudit(config.auditLog, { queue: topo.queue, state, who, effect, inEffect }),
    );
    await pause(config.waitMs, signal);
    report = { state: after, before, instances: sorted(answers) };
  }
  if (config.json) print(JSON.stringify(report, null, 2));
  else for (const line of formatReport(report, config.waitMs)) print(line);
  return EXIT.ok;
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms === 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

function sorted(answers: Map<string, Answered>): Answered[] {
  return [...answers.values()].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}

/** A report as lines for an operator. */
export function formatReport(report: CtlReport, waitMs: number): string[] {
  const lines: string[] = [];
  const { state, before } = report;
  if (before?.paused && state.paused) {
    lines.push(`already paused since ${before.since}; the reason is now: ${state.reason}`);
  } else if (before !== undefined && !before.paused && !state.paused) {
    lines.push("was not paused");
  }
  lines.push(describePause(state));
  if (waitMs === 0) return lines;
  const count = report.instances.length;
  if (count === 0) {
    lines.push(
      `no OrdemDeProducao answered within ${waitMs} ms; each reads the state when it starts`,
    );
    return lines;
  }
  lines.push(`${count} OrdemDeProducao instance${count === 1 ? "" : "s"} answered:`);
  const width = Math.max(...report.instances.map((i) => i.instanceId.length));
  for (const instance of report.instances) {
    lines.push(
      `  ${instance.instanceId.padEnd(width)}  ${instance.paused ? "paused " : "running"}  ${
        instance.consuming ? "consuming    " : "not consuming"
      }  in flight ${String(instance.inFlight).padStart(4)}  after ${
        Math.round(instance.afterMs)
      } ms`,
    );
  }
  const disagree = report.instances.filter((i) => i.paused !== state.paused);
  if (disagree.length > 0) {
    lines.push(
      `warning: ${disagree.map((i) => i.instanceId).join(", ")} ${
        disagree.length === 1 ? "has" : "have"
      } not applied the last change yet`,
    );
  }
  return lines;
}
