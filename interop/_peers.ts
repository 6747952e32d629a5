/**
 * The processes of the interoperability suite: the Go original's two services, built from their
 * source by scripts/go_peer.sh, and this project's two services run from their entry scripts,
 * each with its output collected line by line so a test can wait on what it prints.
 *
 * The Go services talk to `amqp://guest:guest@localhost:5672/`, fixed in their source. To run
 * them, unchanged, against the broker under test (`RABBITMQ_URL`, which may be a 4.x node on
 * another port), each Go process runs in a network namespace of its own whose 127.0.0.1:5672 is
 * bridged to that broker through a Unix socket ({@linkcode GoPeer}):
 *
 * ```text
 *   [netns: Go service -> 127.0.0.1:5672 -> socat] -> <dir>/broker.sock -> [host: socat -> broker]
 * ```
 *
 * They use fixed names too, so every case works on the default vhost's canonical objects and
 * removes them afterwards ({@linkcode withCanonicalNames}); it refuses to start where they hold
 * messages or consumers that are not its own.
 */

import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { topology } from "../lib/topology.ts";
import { RABBITMQ_URL } from "../testing/broker.ts";
import { ourService, Peer } from "../testing/process.ts";

const root = new URL("..", import.meta.url).pathname;

/** The canonical names the Go services use (this project's topology with no prefix). */
export const CANONICAL = topology({ backend: "plugin" });

let built: Promise<string> | undefined;

/** Builds the Go services once per run (scripts/go_peer.sh); resolves with their folder. */
export function goPeer(): Promise<string> {
  built ??= (async () => {
    const { code, stdout, stderr } = await new Deno.Command("bash", {
      args: [join(root, "scripts/go_peer.sh")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    if (code !== 0) {
      throw new Error(`cannot build the Go services: ${text.decode(stderr).trim()}`);
    }
    return text.decode(stdout).trim().split("\n").at(-1)!;
  })();
  return built;
}

/**
 * Run in the network namespace of a Go service, as its first process: brings its loopback up,
 * waits (bounded) for the host's end of the bridge, has socat take one connection on
 * 127.0.0.1:5672 (a Go service opens one) and forward it to that socket, waits until it listens,
 * runs the Go binary, then waits (at most 5 s) for socat to pass on the last bytes the Go side
 * sent (its acks) before the namespace goes, and exits with the Go binary's status. `$1` is the socket, the rest
 * the command.
 */
const IN_NAMESPACE = `
set -u
socket=$1; shift
ip link set lo up
for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { echo "go peer: no bridge at $socket after 10 s" >&2; exit 97; }
socat TCP-LISTEN:5672,bind=127.0.0.1,reuseaddr "UNIX-CONNECT:$socket" &
bridge=$!
for _ in $(seq 1 200); do [ -n "$(ss -Hltn 'sport = :5672')" ] && break; sleep 0.05; done
[ -n "$(ss -Hltn 'sport = :5672')" ] || { echo "go peer: socat does not listen" >&2; exit 97; }
"$@"
status=$?
for _ in $(seq 1 100); do kill -0 "$bridge" 2>/dev/null || break; sleep 0.05; done
kill "$bridge" 2>/dev/null
exit $status
`;

/**
 * A Go service as a process whose `localhost:5672` is the broker under test: in a network (and
 * PID) namespace of its own (`unshare`, root), bridged to `RABBITMQ_URL`'s host and port through
 * a Unix socket by two socat processes. Stopping it stops the bridge too.
 */
export class GoPeer extends Peer {
  readonly #bridge: Peer;
  readonly #dir: string;

  constructor(name: string, binary: string, brokerUrl = RABBITMQ_URL) {
    const broker = new URL(brokerUrl);
    const dir = Deno.makeTempDirSync({ prefix: "go-peer-" });
    const socket = join(dir, "broker.sock");
    const bridge = new Peer(`${name}'s bridge`, "socat", [
      `UNIX-LISTEN:${socket},fork`,
      `TCP:${broker.hostname}:${broker.port || "5672"}`,
    ]);
    super(name, "unshare", [
      "--net",
      "--pid",
      "--kill-child", // implies --fork: the Go process dies with unshare
      "bash",
      "-c",
      IN_NAMESPACE,
      "go-peer",
      socket,
      binary,
    ]);
    this.#bridge = bridge;
    this.#dir = dir;
  }

  /** Stops the Go process, then its bridge, and removes the socket's folder. */
  override async stop(): Promise<Deno.CommandStatus> {
    try {
      return await super.stop();
    } finally {
      await this.#bridge.stop();
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * An order's body as Go's encoding/json marshals the Go Estoque's message struct, in both of its
 * versions (interop/go_bodies): with `EventType` (its first commit) and without (since e1fe516).
 */
export async function goMarshalled(
  ref: string,
  color: string,
  quantity: number,
): Promise<{ withEventType: string; withoutEventType: string }> {
  await goPeer(); // the Debian Go packages are in place
  const { code, stdout, stderr } = await new Deno.Command("go", {
    args: ["run", ".", ref, color, String(quantity)],
    cwd: join(root, "interop/go_bodies"),
    env: {
      GO111MODULE: "off",
      GOPATH: "/usr/share/gocode",
      GOCACHE: join(root, ".cache/go-build"),
    },
  }).output();
  if (code !== 0) throw new Error(`go_bodies failed: ${new TextDecoder().decode(stderr)}`);
  const [withEventType, withoutEventType] = new TextDecoder().decode(stdout).trim().split("\n");
  return { withEventType: withEventType!, withoutEventType: withoutEventType! };
}

/**
 * The Go OrdemDeProducao, consuming `create.productionorder` until stopped, on the broker under
 * test or `url`'s.
 */
export async function goOrdem(url = RABBITMQ_URL): Promise<GoPeer> {
  const peer = new GoPeer("Go OrdemDeProducao", join(await goPeer(), "ordem-de-producao"), url);
  try {
    await peer.until("the Go consumer to start", /Waiting messages to be delivered/);
  } catch (error) {
    await peer.stop();
    throw error;
  }
  return peer;
}

/** Runs the Go Estoque once to its end (on `url`'s broker); its exit status and what it printed. */
export async function runGoEstoque(url = RABBITMQ_URL): Promise<{ code: number; output: string }> {
  await using peer = new GoPeer("Go Estoque", join(await goPeer(), "estoque"), url);
  const status = await peer.status;
  return { code: status.code, output: String(peer) };
}

/** Runs the Go Estoque once (it declares its topology and publishes one random order). */
export async function goEstoque(url = RABBITMQ_URL): Promise<void> {
  const { code, output } = await runGoEstoque(url);
  if (code !== 0) throw new Error(`the Go Estoque failed (${code}):\n${output}`);
}

/** The RefCodes the Go OrdemDeProducao logged "Created production order" for, in order. */
export function goRuns(peer: Peer): string[] {
  return peer.grep(/Created production order for ref\. code: /).map((line) =>
    line.slice(line.lastIndexOf(" ") + 1)
  );
}

/** Runs our Estoque to its end (on `url`'s broker); resolves with the RefCodes confirmed. */
export async function ourEstoque(
  args: readonly string[],
  confirmedLog: string,
  url = RABBITMQ_URL,
): Promise<string[]> {
  await using peer = ourService("our Estoque", "estoque.ts", [
    ...args,
    "--confirmed-log",
    confirmedLog,
  ], { RABBITMQ_URL: url });
  const status = await peer.status;
  if (status.code !== 0) throw new Error(`our Estoque failed (${status.code}):\n${peer}`);
  return (await Deno.readTextFile(confirmedLog)).split("\n").filter((line) => line !== "");
}

/** What our OrdemDeProducao logged about a RefCode: one entry per run of it. */
export function ourRuns(peer: Peer): { refCode: string; msg: string }[] {
  const pattern = /msg="?(production order|retry scheduled|dead-lettered)"?/;
  return peer.grep(pattern).flatMap((line) => {
    const ref = /refCode=([0-9a-f-]{36})/.exec(line)?.[1];
    const msg = pattern.exec(line)![1]!;
    return ref === undefined ? [] : [{ refCode: ref, msg }];
  });
}

async function removeCanonical(broker: Broker): Promise<void> {
  const channel = await broker.channel();
  try {
    for (const queue of [CANONICAL.queue, CANONICAL.deadLetterQueue]) {
      await channel.deleteQueue(queue);
    }
    for (const tier of [5_000, 10_000]) {
      await channel.deleteQueue(`${CANONICAL.queue}.retry.${tier}ms`);
    }
    await channel.deleteExchange(CANONICAL.exchange);
    await channel.deleteExchange(CANONICAL.deadLetterExchange);
    // Ours declare the control plane beside the topology (lib/control_store.ts).
    await channel.deleteQueue(CANONICAL.control.stateQueue);
    await channel.deleteExchange(CANONICAL.control.exchange);
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Runs `fn` with the canonical names free on the default vhost of the broker under test (or of
 * `url`'s) and removes them afterwards, whatever happened. Fails, touching nothing, where the
 * work queue or the DLQ already holds messages or has consumers: those are someone else's.
 */
export async function withCanonicalNames(
  fn: (broker: Broker) => Promise<void>,
  url = RABBITMQ_URL,
): Promise<void> {
  const broker = await Broker.connect(url, { name: "interop" });
  try {
    for (const queue of [CANONICAL.queue, CANONICAL.deadLetterQueue]) {
      const channel = await broker.channel();
      const found = await channel.checkQueue(queue).catch(() => undefined);
      await channel.close().catch(() => {});
      if (found && (found.messageCount > 0 || found.consumerCount > 0)) {
        throw new Error(
          `queue ${queue} on the default vhost holds ${found.messageCount} messages and has ` +
            `${found.consumerCount} consumers: the interop suite needs the Go services' fixed ` +
            `names on ${broker.safeUrl}; remove it if it is a leftover`,
        );
      }
    }
    await removeCanonical(broker);
    try {
      await fn(broker);
    } finally {
      await removeCanonical(broker);
    }
  } finally {
    await broker.close();
  }
}
