/**
 * The fault-injection suite (`deno task test:faults`): each case publishes a few thousand orders
 * (valid, over the quantity limit, malformed), injects a fault mid-run, lets the services
 * recover, and checks that every RefCode ended exactly once in the ledger or the DLQ. One file
 * per fault family, each a test file of its own too:
 *
 * - faults/services.ts: a service kill -9'd (1, 4, 6), the consumer's connection dropped (5);
 * - faults/ledger.ts: the ledger stopped or locked under load (8, 9);
 * - faults/cluster.ts: on a throwaway 3-node cluster, a node restarted or kill -9'd (2, 3, 7),
 *   TLS with client certificates (`tls`), a memory alarm (`blocked`);
 * - faults/partition.ts: network partitions on a 3-node cluster in network namespaces (p1..p4),
 *   run only when asked: `deno task test:faults -- --partitions` (about half an hour).
 * - faults/outbox.ts: Estoque's outbox under kill -9, a dropped link, a stopped store (o1..o4).
 *
 * A report of the outages is printed at the end. Env: `FAULT_BROKER` (`3.10`, the default, `4.0`
 * or `4.3`: the RabbitMQ line, see faults/_brokers.ts), `FAULT_CASES` (e.g. `2,3,tls`: only those),
 * `FAULT_ORDERS`, `FAULT_RATE`, `FAULT_DEBUG`, `FAULT_KEEP_CLUSTER`, `FAULT_DOCS`, `FAULT_PARTITIONS`,
 * `FAULT_RUNS` (runs of each partition case, 5).
 *
 * @example
 * ```sh
 * deno task test:faults                                        # every case on RabbitMQ 3.10
 * FAULT_BROKER=4.3 FAULT_CASES=2 deno test -P faults/cluster.ts  # case 2 on a 4.3 cluster
 * ```
 *
 * @module
 */

import "./services.ts";
import "./ledger.ts";
import "./cluster.ts";
import "./partition.ts";
import "./outbox.ts";
import { reportTest } from "./_report.ts";

reportTest(import.meta.url);
