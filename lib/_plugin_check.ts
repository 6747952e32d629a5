/**
 * The doctor's check of the delayed-message plugin: whether the broker has it, and what that
 * means for the retry backend, by the broker's release. Before 4.3 it asks the management API, or
 * declares a throwaway `x-delayed-message` exchange on a connection of its own; from 4.3, where no
 * plugin works and that declare can take the node down, it declares nothing.
 *
 * @module
 */

import { Broker } from "./broker.ts";
import {
  DELAYED_MESSAGE_PLUGIN,
  NO_DELAYED_MESSAGE_PLUGIN_FROM,
  pluginBackendRuns,
  type Topology,
} from "./topology.ts";

/** What {@linkcode pluginCheck} found. */
export interface PluginFinding {
  /** Whether the broker knows the `x-delayed-message` exchange type. */
  readonly plugin: boolean;
  /** Whether the plugin backend can run on this release (before 4.3). */
  readonly pluginRuns: boolean;
  /** The check's outcome, as the doctor reports it. */
  readonly status: "ok" | "fail";
  /** What was found. */
  readonly detail: string;
}

/**
 * Whether the broker knows the x-delayed-message exchange type (before 4.3 only): from the
 * exchange types the management API listed, else by declaring one.
 */
async function hasDelayedPlugin(
  url: string,
  topo: Topology,
  exchangeTypes: readonly string[] | undefined,
): Promise<boolean> {
  if (exchangeTypes) return exchangeTypes.includes("x-delayed-message");
  // Declaring an unknown exchange type closes the connection, so probe on a connection of its own.
  const broker = await Broker.connect(url, { name: "doctor plugin probe" });
  const name = `${topo.prefix}doctor.probe.${crypto.randomUUID()}`;
  try {
    const channel = await broker.channel();
    await channel.assertExchange(name, "x-delayed-message", {
      durable: false,
      autoDelete: true,
      arguments: { "x-delayed-type": "direct" },
    });
    await channel.deleteExchange(name);
    await channel.close();
    return true;
  } catch {
    return false;
  } finally {
    await broker.close();
  }
}

/**
 * Checks the delayed-message plugin on the broker `broker` is connected to (`url`, for a probe
 * connection of its own), for the backend of `topo`; `exchangeTypes` are those the management
 * API listed, undefined without it.
 */
export async function pluginCheck(
  broker: Broker,
  url: string,
  topo: Topology,
  exchangeTypes: readonly string[] | undefined,
): Promise<PluginFinding> {
  const pluginRuns = pluginBackendRuns(broker.serverVersion);
  if (pluginRuns) {
    const plugin = await hasDelayedPlugin(url, topo, exchangeTypes);
    if (plugin) {
      const detail = `present${topo.backend === "plugin" ? " (needed by the plugin backend)" : ""}`;
      return { plugin, pluginRuns, status: "ok", detail };
    }
    return topo.backend === "plugin"
      ? {
        plugin,
        pluginRuns,
        status: "fail",
        detail: `missing, and the plugin backend needs it: "rabbitmq-plugins enable ` +
          `${DELAYED_MESSAGE_PLUGIN}", or use --retry-backend ttl`,
      }
      : { plugin, pluginRuns, status: "ok", detail: "absent (the ttl backend does not need it)" };
  }
  // From 4.3: only the management API is asked; nothing is declared.
  const from = NO_DELAYED_MESSAGE_PLUGIN_FROM;
  const plugin = exchangeTypes?.includes("x-delayed-message") ?? false;
  const found = plugin
    ? `enabled, and it does not work on RabbitMQ ${from} and later: the node will not boot ` +
      `with it, disable it ("rabbitmq-plugins disable ${DELAYED_MESSAGE_PLUGIN}")`
    : exchangeTypes === undefined
    ? `not looked for: none works on RabbitMQ ${from} and later`
    : `absent: none works on RabbitMQ ${from} and later`;
  if (topo.backend === "plugin") {
    return {
      plugin,
      pluginRuns,
      status: "fail",
      detail: `${found}; the plugin backend cannot run on RabbitMQ ${broker.serverVersion}: ` +
        `use --retry-backend ttl (docs/migration.md)`,
    };
  }
  return {
    plugin,
    pluginRuns,
    status: plugin ? "fail" : "ok",
    detail: `${found} (the ttl backend does not need it)`,
  };
}
