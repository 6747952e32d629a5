/**
 * ctl: pauses or resumes every OrdemDeProducao through the broker, or says whether they are
 * paused. A pause stops each instance taking deliveries (a basic.cancel; those in flight finish)
 * until a resume: orders wait in the work queue, nothing is lost. The state is kept on the broker,
 * so an instance started while the fleet is paused starts paused. Each pause and resume is
 * appended to the audit trail.
 *
 *   deno task ctl pause --reason "ERP maintenance" [--operator NAME] [--wait MS] [--json]
 *   deno task ctl resume [--reason TEXT]
 *   deno task ctl status [--wait MS] [--json]
 *
 * Env: RABBITMQ_URL (the first of a comma-separated list that answers), RABBITMQ_USER,
 * RABBITMQ_PASSWORD, RABBITMQ_CA_FILE, RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX,
 * QUEUE_TYPE, CTL_WAIT_MS, DLQ_AUDIT_LOG, DLQ_OPERATOR, LOG_LEVEL. `--help` lists every flag.
 * Exits 2 for a bad flag or a pause without `--reason`.
 *
 * @module
 */

import { ctlConfig } from "./lib/config.ts";
import { runCtl } from "./lib/ctl.ts";
import { runCommand } from "./lib/main.ts";
import { COMMANDS } from "./lib/options.ts";

runCommand(COMMANDS.ctl, (cl, signal) => runCtl(ctlConfig(cl), signal));
