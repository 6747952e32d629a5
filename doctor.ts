/**
 * The topology doctor: connects to the broker and prints a checklist of what the services need:
 * broker version, the delayed-message plugin (and whether the backend needs it), exchanges and
 * queues whose settings differ from what the services declare (both sides shown), quorum queues
 * without a delivery limit or with unsafe dead-lettering, a length limit with drop-head overflow
 * on the work queue, unbound queues, and the depth of every queue and retry tier.
 * Exits 1 when it finds a problem.
 *
 *   deno task doctor [--prefix P] [--retry-backend ttl|plugin] [--management-url URL]
 *
 * Env: RABBITMQ_URL, RABBITMQ_MANAGEMENT_URL, TOPOLOGY_PREFIX, RETRY_*. `--help` lists every flag.
 *
 * @module
 */

import { doctorConfig } from "./lib/doctor_config.ts";
import { COMMANDS } from "./lib/options.ts";
import { formatChecks, runDoctor } from "./lib/doctor.ts";
import { redactUrl } from "./lib/broker.ts";
import { ManagementClient, vhostOf } from "./lib/management.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";

runCommand(COMMANDS.doctor, async (cl) => {
  const config = doctorConfig(cl);
  setupLogging({ level: "error" });
  const checks = await runDoctor({
    url: config.url,
    topology: config.topology,
    policy: config.policy,
    management: config.managementUrl === undefined
      ? undefined
      : new ManagementClient(config.managementUrl, vhostOf(config.url)),
    stockUrl: config.stockUrl,
    outboxMaxAgeMs: config.outboxMaxAgeMs,
  });
  if (config.json) {
    console.log(JSON.stringify(checks, null, 2));
  } else {
    console.log(
      `Doctor for ${config.topology.exchange} on ${redactUrl(config.url)} (vhost ${
        vhostOf(config.url)
      }, retry backend ${config.topology.backend})\n`,
    );
    console.log(formatChecks(checks));
  }
  return checks.some((c) => c.status === "fail") ? EXIT.failure : EXIT.ok;
});
