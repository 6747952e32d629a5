/**
 * The topology doctor: connects to the broker and checks what the services need, as a list of
 * findings an operator can act on.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { Broker } from "./broker.ts";
import { describeError, REPLY_CODE, replyCode } from "./errors.ts";
import type { ManagementClient } from "./management.ts";
import { formatAge, toDeadLetter } from "./dead_letters.ts";
import { policyTag, RETRY_POLICY_ARGUMENT, type RetryPolicy } from "./retry_policy.ts";
import { pluginCheck } from "./_plugin_check.ts";
import { outboxVerdict, readOutboxStats } from "./outbox_check.ts";
import {
  limitsQuorumQueuesByDefault,
  NO_DELAYED_MESSAGE_PLUGIN_FROM,
  queueDeclarations,
  type Topology,
  UNLIMITED_DELIVERIES,
} from "./topology.ts";

/** How a check came out. `fail` makes the doctor exit non-zero. */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";

/** One finding. */
export interface Check {
  /** How it came out. */
  readonly status: CheckStatus;
  /** What was checked, e.g. `queue create.productionorder`. */
  readonly subject: string;
  /** What was found. */
  readonly detail: string;
}

/** Options for {@linkcode runDoctor}. */
export interface DoctorOptions {
  /** The broker URL. */
  readonly url: string;
  /** What the services would declare. */
  readonly topology: Topology;
  /** The retry settings the services are expected to run with. */
  readonly policy?: RetryPolicy;
  /** The management API, for the checks AMQP cannot make; undefined skips them. */
  readonly management: ManagementClient | undefined;
  /** Estoque's stock store, whose outbox is checked read only; undefined skips it. */
  readonly stockUrl?: string | undefined;
  /** How long a request may wait unsent before the outbox is stuck. @default {60000} */
  readonly outboxMaxAgeMs?: number;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Queue arguments with `x-queue-type` spelt out: a queue declared without it is classic, and
 * RabbitMQ 4.x reports `x-queue-type: classic` on such a queue where 3.x reports nothing, so a
 * missing type and `classic` are the same declaration.
 */
function withQueueType(args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { "x-queue-type": "classic", ...args };
}

/** Runs a channel operation on a throwaway channel, so a channel error cannot spread. */
async function probe<T>(broker: Broker, operation: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await broker.channel();
  try {
    return await operation(channel);
  } catch (error) {
    throw broker.explain(error);
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Checks the broker against the topology; see the README's "Operating it" for every check. */
export async function runDoctor(options: DoctorOptions): Promise<Check[]> {
  const { topology: topo, management } = options;
  const checks: Check[] = [];
  const add = (status: CheckStatus, subject: string, detail: string) =>
    checks.push({ status, subject, detail });

  let broker: Broker;
  try {
    broker = await Broker.connect(options.url, { name: "doctor" });
  } catch (error) {
    add("fail", "broker", describeError(error));
    return checks;
  }
  let overflowIntoDlq = false;
  try {
    const server = broker.model.connection.serverProperties;
    add(
      "ok",
      "broker",
      `${server.product ?? "RabbitMQ"} ${server.version ?? "?"} on ${server.platform ?? "?"}`,
    );

    let mgmt = management;
    // Asked once: RabbitMQ 4.x's /api/overview now and then takes 5 s to answer.
    let exchangeTypes: readonly string[] | undefined;
    if (mgmt) {
      try {
        exchangeTypes = await mgmt.exchangeTypes();
        add("ok", "management API", mgmt.safeUrl);
      } catch (error) {
        add(
          "skip",
          "management API",
          `not reachable (${describeError(error)}): argument, binding and quorum checks skipped; ` +
            `enable it with "rabbitmq-plugins enable rabbitmq_management"`,
        );
        mgmt = undefined;
      }
    } else {
      add("skip", "management API", "not asked for: argument, binding and quorum checks skipped");
    }

    const { plugin, pluginRuns, status, detail } = await pluginCheck(
      broker,
      options.url,
      topo,
      exchangeTypes,
    );
    add(status, "delayed-message plugin", detail);

    for (
      const [name, type] of [
        [topo.exchange, topo.exchangeType],
        [topo.deadLetterExchange, "direct"],
      ] as const
    ) {
      const found = await probe(broker, (ch) => ch.checkExchange(name)).then(
        () => undefined,
        (error: unknown) => error,
      );
      if (found !== undefined && replyCode(found) !== REPLY_CODE.notFound) {
        add("fail", `exchange ${name}`, `cannot check it: ${describeError(found)}`);
        continue;
      }
      if (found !== undefined) {
        add(
          "fail",
          `exchange ${name}`,
          `missing: start the services (they declare it), or check --prefix ("${topo.prefix}")`,
        );
        continue;
      }
      if (type === "x-delayed-message" && (!plugin || !pluginRuns)) {
        add(
          "skip",
          `exchange ${name}`,
          pluginRuns
            ? "exists; its type cannot be compared without the plugin"
            : `exists; its type is not compared on RabbitMQ ${NO_DELAYED_MESSAGE_PLUGIN_FROM} and later`,
        );
        continue;
      }
      try {
        await probe(broker, (ch) =>
          ch.assertExchange(name, type, {
            durable: true,
            ...(type === "x-delayed-message" ? { arguments: { "x-delayed-type": "direct" } } : {}),
          }));
        add("ok", `exchange ${name}`, `${type}, durable`);
      } catch (error) {
        add(
          "fail",
          `exchange ${name}`,
          `differs from what the services declare: ${(error as Error).message}`,
        );
      }
    }

    // A quorum DLQ (as declared, or as the management API shows it) is not peeked at.
    let quorumDlq = topo.queueType === "quorum";
    for (const declaration of queueDeclarations(topo)) {
      const subject = `queue ${declaration.name}`;
      const isTier = topo.retryTiers.some((t) => t.queue === declaration.name);
      let counts: { messageCount: number; consumerCount: number };
      try {
        counts = await probe(broker, (ch) => ch.checkQueue(declaration.name));
      } catch (error) {
        // Only a 404 says it is missing; anything else (a connection lost) says nothing of it.
        if (replyCode(error) !== REPLY_CODE.notFound) {
          add("fail", subject, `cannot check it: ${describeError(error)}`);
          continue;
        }
        add(
          "fail",
          subject,
          `missing: start the services (they declare it), or check --prefix ("${topo.prefix}") and the retry settings`,
        );
        continue;
      }
      const problems: string[] = [];
      if (mgmt) {
        const actual = await mgmt.queue(declaration.name);
        if (actual) {
          const expected = withQueueType(declaration.arguments);
          const found = withQueueType(actual.arguments);
          const keys = new Set([...Object.keys(expected), ...Object.keys(found)]);
          const differ = [...keys].sort().filter((k) => !same(expected[k], found[k]))
            .map((k) =>
              `${k}: services declare ${JSON.stringify(expected[k] ?? "(none)")}, broker has ${
                JSON.stringify(found[k] ?? "(none)")
              }`
            );
          if (differ.length > 0) {
            problems.push(
              `arguments differ, so RabbitMQ refuses the services' declare with PRECONDITION_FAILED (${
                differ.join("; ")
              })`,
            );
          }
          if (!actual.durable) {
            problems.push("not durable: its messages are lost on a broker restart");
          }
          if (actual.type === "quorum") {
            const limit = actual.arguments["x-delivery-limit"];
            if (declaration.name === topo.deadLetterQueue) {
              quorumDlq = true;
              const unlimited = limit === -1 || limit === UNLIMITED_DELIVERIES ||
                (limit === undefined && !limitsQuorumQueuesByDefault(broker.serverVersion));
              if (!unlimited) {
                problems.push(
                  `a delivery limit on the DLQ (${
                    limit ?? "RabbitMQ 4's default of 20"
                  }): every look at a dead letter (dlq list, the console, a metrics scrape) is a ` +
                    `delivery, and RabbitMQ drops a letter once it is looked at past the limit; ` +
                    `move the letters out and declare it again (docs/operations.md)`,
                );
              }
            } else if (limit === undefined) {
              problems.push("quorum queue without an explicit x-delivery-limit");
            }
            if (
              actual.arguments["x-dead-letter-strategy"] === "at-least-once" &&
              actual.arguments["x-overflow"] !== "reject-publish"
            ) {
              problems.push(
                "quorum at-least-once dead-lettering without x-overflow reject-publish: RabbitMQ falls back to at-most-once",
              );
            }
          }
          const limited = actual.arguments["x-max-length"] !== undefined ||
            actual.arguments["x-max-length-bytes"] !== undefined;
          const overflow = actual.arguments["x-overflow"] ?? "drop-head";
          if (declaration.name === topo.queue && limited && overflow === "drop-head") {
            problems.push(
              "length limit with drop-head overflow: when full, the oldest orders are dropped or dead-lettered unprocessed (use x-overflow reject-publish)",
            );
            if (actual.arguments["x-dead-letter-exchange"] === topo.deadLetterExchange) {
              overflowIntoDlq = true;
              problems.push(
                `overflow mixed into the DLQ: a dropped order is dead-lettered to ${topo.deadLetterExchange} ` +
                  `with its own routing key and lands in ${topo.deadLetterQueue} beside failed orders, ` +
                  `with no x-dead-letter-reason (only x-death reason maxlen), never processed`,
              );
            }
          }
          if (!isTier) {
            const bindings = await mgmt.bindings(declaration.name);
            const source = declaration.name === topo.queue
              ? topo.exchange
              : topo.deadLetterExchange;
            if (!bindings.some((b) => b.source === source && b.routingKey === topo.routingKey)) {
              problems.push(
                `not bound to ${source} with "${topo.routingKey}": nothing published reaches it`,
              );
            }
          }
        }
      } else {
        try {
          await probe(
            broker,
            (ch) =>
              ch.assertQueue(declaration.name, {
                durable: true,
                arguments: { ...declaration.arguments },
              }),
          );
        } catch (error) {
          problems.push(`differs from what the services declare: ${(error as Error).message}`);
        }
      }
      const depth = `${counts.messageCount} ready, ${counts.consumerCount} consumer${
        counts.consumerCount === 1 ? "" : "s"
      }`;
      const warnings: string[] = [];
      if (declaration.name === topo.queue && counts.consumerCount === 0) {
        warnings.push("no consumer: is OrdemDeProducao running?");
      }
      if (declaration.name === topo.queue && mgmt && options.policy) {
        const expected = policyTag(options.policy);
        const others = (await mgmt.consumerArguments(topo.queue))
          .map((args) => args[RETRY_POLICY_ARGUMENT])
          .filter((tag) => typeof tag === "string" && tag !== expected);
        for (const tag of new Set(others)) {
          warnings.push(
            `a consumer runs with other retry settings (${tag}) than given here (${expected})`,
          );
        }
      }
      if (declaration.name === topo.deadLetterQueue && counts.messageCount > 0) {
        // A quorum DLQ is not peeked at: it would put the oldest letter behind the others
        // (queue_stats.ts), and spend it where there is a delivery limit.
        const oldest = quorumDlq ? undefined : await oldestDeadLetterAge(broker, declaration.name);
        warnings.push(
          `${counts.messageCount} dead letter(s)${
            oldest === undefined ? "" : `, the oldest dead-lettered ${formatAge(oldest)} ago`
          }: deno task dlq list`,
        );
      }
      if (problems.length > 0) add("fail", subject, `${problems.join("; ")} [${depth}]`);
      else if (warnings.length > 0) add("warn", subject, `${warnings.join("; ")} [${depth}]`);
      else {add(
          "ok",
          subject,
          `${
            isTier ? `retry tier, TTL ${declaration.arguments["x-message-ttl"]} ms, ` : ""
          }${depth}`,
        );}
    }
    if (mgmt) {
      // Retry tiers the given settings do not declare: a service runs with other retry delays.
      const tierPrefix = `${topo.queue}.retry.`;
      const known = new Set(topo.retryTiers.map((t) => t.queue));
      for (const name of await mgmt.queueNames()) {
        if (name.startsWith(tierPrefix) && !known.has(name)) {
          add(
            "warn",
            `queue ${name}`,
            `a retry tier the given retry settings do not declare: a service runs (or ran) with other retry delays; compare the services' RETRY_* settings, then delete the tier once empty`,
          );
        }
      }
    }
    if (overflowIntoDlq) {
      add(
        "warn",
        "migration",
        `this looks like the Go services' topology (x-max-length on the work queue): the ` +
          `services can run on it as it is with --no-declare --retry-backend plugin; to move to ` +
          `this project's topology, declare it under a new --prefix, switch Estoque over, and ` +
          `drain the old queue (docs/migration.md)`,
      );
    }
  } finally {
    await broker.close();
  }
  await checkOutbox(options, add);
  return checks;
}

/** The outbox check: skipped without a stock store; a stuck or unreadable outbox is a problem. */
async function checkOutbox(
  options: DoctorOptions,
  add: (status: CheckStatus, subject: string, detail: string) => void,
): Promise<void> {
  if (options.stockUrl === undefined) {
    add("skip", "outbox", "no stock store given (--stock-url / STOCK_URL)");
    return;
  }
  try {
    const stats = await readOutboxStats(options.stockUrl);
    const verdict = outboxVerdict(stats, new Date(), options.outboxMaxAgeMs ?? 60_000);
    add(verdict.stuck ? "fail" : "ok", "outbox", verdict.detail);
  } catch (error) {
    add("fail", "outbox", describeError(error));
  }
}

const LABEL: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" };

/** Renders the findings as a checklist, with a closing count. */
export function formatChecks(checks: readonly Check[]): string {
  const lines = checks.map((c) => `  ${LABEL[c.status]}  ${c.subject}: ${c.detail}`);
  const failed = checks.filter((c) => c.status === "fail").length;
  const warned = checks.filter((c) => c.status === "warn").length;
  lines.push(
    "",
    failed === 0 && warned === 0
      ? "No problems found."
      : `${failed} problem${failed === 1 ? "" : "s"}, ${warned} warning${warned === 1 ? "" : "s"}.`,
  );
  return lines.join("\n");
}

/** How long ago the dead letter at the head of the queue (the oldest) was dead-lettered, in ms. */
async function oldestDeadLetterAge(broker: Broker, queue: string): Promise<number | undefined> {
  return await probe(broker, async (channel) => {
    const message = await channel.get(queue, { noAck: false });
    if (message === false) return undefined;
    const at = toDeadLetter(message).deadLetteredAt;
    channel.nack(message, false, true);
    return at === undefined ? undefined : Date.now() - at.getTime();
  });
}
