/**
 * Dead-letter tooling: look at, replay or purge what OrdemDeProducao dead-lettered.
 *
 *   deno task dlq list   [--reason R] [--since 1h|DATE] [--ref REF] [--limit N] [--json]
 *   deno task dlq show   REF [--json]
 *   deno task dlq replay [filters] [--limit N] [--rate N] [--dry-run]
 *   deno task dlq purge  [filters] [--yes]
 *
 * `list` and `show` put back every message they look at, in order. `replay` sends matching
 * messages back to the work exchange with the retry count reset, acking each from the DLQ only
 * after its republish is confirmed. `purge` asks first unless `--yes`.
 * Env: RABBITMQ_URL (the first of a comma-separated list that answers), RABBITMQ_CA_FILE,
 * RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX, LOG_LEVEL. `--help` lists every flag.
 *
 * @module
 */

import {
  booleanOption,
  choiceOption,
  integerOption,
  numberOption,
  stringOption,
  UsageError,
} from "./lib/cli.ts";
import { connectionConfig } from "./lib/config.ts";
import { COMMANDS, type DLQ_OPTIONS } from "./lib/options.ts";
import {
  type DeadLetterFilter,
  deadLetterJson,
  formatDeadLetterTable,
  inspectDeadLetters,
  parseSince,
  purgeDeadLetters,
  replayDeadLetters,
} from "./lib/dead_letters.ts";
import { LOG_LEVELS, setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { Progress } from "./lib/progress.ts";
import { connectFirst } from "./lib/reconnect.ts";
import { topology } from "./lib/topology.ts";

const VERBS = ["list", "show", "replay", "purge"] as const;

runCommand(COMMANDS.dlq, async (cl, signal) => {
  const o = cl.options as Record<keyof typeof DLQ_OPTIONS, (typeof cl.options)[string]>;
  const [command, ...rest] = cl.positionals;
  if (command === undefined) throw new UsageError(`name a command: ${VERBS.join(", ")}`);
  const verb = choiceOption({ value: command, label: "the command" }, VERBS);
  if (verb !== "show" && rest.length > 0) {
    throw new UsageError(`${verb} takes no arguments, got ${JSON.stringify(rest.join(" "))}`);
  }
  const { urls, tls } = connectionConfig(o);
  const topo = topology({ prefix: stringOption(o.prefix) });
  setupLogging({ level: choiceOption(o["log-level"], LOG_LEVELS) });
  const now = new Date();
  let since: Date | undefined;
  if (o.since.value !== undefined) {
    since = parseSince(stringOption(o.since), now);
    if (!since) {
      throw new UsageError(
        `--since must be a duration such as 90s, 15m, 2h or 7d, or a date, got ${
          JSON.stringify(o.since.value)
        }`,
      );
    }
  }
  const filter: DeadLetterFilter = {
    reason: o.reason.value === undefined ? undefined : stringOption(o.reason),
    ref: o.ref.value === undefined ? undefined : stringOption(o.ref),
    since,
  };
  const limit = o.limit.value === undefined ? undefined : integerOption(o.limit, 1, 10_000_000);
  const scan = { filter, signal, ...(limit !== undefined ? { limit } : {}) };

  // The first broker of the list that answers (any node of a cluster will do).
  await using broker = (await connectFirst(urls, { name: `dlq ${verb}`, tls })).broker;
  switch (verb) {
    case "list": {
      const letters = await inspectDeadLetters(broker, topo, scan);
      if (booleanOption(o.json)) {
        console.log(JSON.stringify(letters.map((l) => deadLetterJson(l, false)), null, 2));
      } else {
        console.log(formatDeadLetterTable(letters, now));
        console.log(`\n${letters.length} dead letter(s) in ${topo.deadLetterQueue}`);
      }
      return EXIT.ok;
    }
    case "show": {
      if (rest.length !== 1) throw new UsageError("show takes one RefCode: deno task dlq show REF");
      const [letter] = await inspectDeadLetters(broker, topo, {
        filter: { ...filter, ref: rest[0] },
        limit: 1,
        signal,
      });
      if (!letter) {
        console.error(`error: no dead letter with RefCode ${rest[0]} in ${topo.deadLetterQueue}`);
        return EXIT.failure;
      }
      const json = deadLetterJson(letter, true);
      if (booleanOption(o.json)) {
        console.log(JSON.stringify(json, null, 2));
      } else {
        console.log(`RefCode:     ${json.refCode}`);
        console.log(`reason:      ${json.reason} after ${json.attempts} retries`);
        console.log(`last error:  ${json.lastError}`);
        console.log(`first fail:  ${json.firstFailedAt ?? "-"}`);
        console.log(`dead since:  ${json.deadLetteredAt ?? "-"}`);
        console.log(`properties:  ${JSON.stringify(json.properties)}`);
        console.log("headers:");
        for (const [key, value] of Object.entries(letter.headers)) {
          console.log(`  ${key}: ${JSON.stringify(value)}`);
        }
        console.log(
          json.body !== undefined
            ? `body:\n${json.body}`
            : `body (base64, not UTF-8):\n${json.bodyBase64}`,
        );
      }
      return EXIT.ok;
    }
    case "replay": {
      const dryRun = booleanOption(o["dry-run"]);
      const rate = o.rate.value === undefined ? undefined : numberOption(o.rate, 0.1, 1_000_000);
      const total = Math.min(
        limit ?? Number.POSITIVE_INFINITY,
        await broker.messageCount(topo.deadLetterQueue),
      );
      const progress = dryRun ? undefined : new Progress({ label: "replayed", total });
      const summary = await replayDeadLetters(broker, topo, {
        ...scan,
        dryRun,
        ...(rate !== undefined ? { ratePerSecond: rate } : {}),
        onProgress: (n) => progress?.update(n),
      });
      progress?.done(summary.replayed);
      console.log(
        dryRun
          ? `dry run: ${summary.matched} dead letter(s) would be replayed to ${topo.exchange}, ${summary.kept} left in ${topo.deadLetterQueue}`
          : `replayed ${summary.replayed} of ${summary.matched} matching dead letter(s) to ${topo.exchange}` +
            `${summary.failed > 0 ? `, ${summary.failed} failed and stay in the DLQ` : ""}` +
            `, ${summary.kept} left in ${topo.deadLetterQueue}`,
      );
      return summary.failed > 0 ? EXIT.failure : EXIT.ok;
    }
    case "purge": {
      if (!booleanOption(o.yes)) {
        if (!Deno.stdin.isTerminal()) {
          throw new UsageError("purge deletes dead letters for good: add --yes to confirm");
        }
        const what = filter.reason || filter.ref || filter.since || limit
          ? "the matching dead letters"
          : `every dead letter (${await broker.messageCount(topo.deadLetterQueue)})`;
        const answer = prompt(`Delete ${what} in ${topo.deadLetterQueue} for good? [y/N]`);
        if (!/^y(es)?$/i.test(answer?.trim() ?? "")) {
          console.log("nothing purged");
          return EXIT.ok;
        }
      }
      const summary = await purgeDeadLetters(broker, topo, scan);
      console.log(
        `purged ${summary.purged} dead letter(s) from ${topo.deadLetterQueue}, ${summary.kept} kept`,
      );
      return EXIT.ok;
    }
  }
});
