/**
 * What ours runs with: only ever what the services run with, their defaults, read from their
 * options (lib/options.ts) so the bench follows a change of default.
 *
 * @module
 */

import {
  DLQ_OPTIONS,
  ESTOQUE_OPTIONS,
  ESTOQUE_RELAY_OPTIONS,
  ORDEM_OPTIONS,
} from "../lib/options.ts";
import type { Settings } from "./_settings.ts";

const int = (text: string | undefined) => Number(text);

/**
 * What the services run with by default: OrdemDeProducao's prefetch, Estoque's publish window. Their
 * connections coalesce writes; Estoque and OrdemDeProducao are separate processes, so each
 * publishes on a connection of its own.
 */
export const SERVICES: Settings = {
  prefetch: int(ORDEM_OPTIONS.prefetch.default),
  window: int(ESTOQUE_OPTIONS.window.default),
  connections: 2,
  writes: "coalesced",
};

/** `dlq replay`'s default window (`--window`, DLQ_WINDOW). */
export const REPLAY_WINDOW: number = int(DLQ_OPTIONS.window.default);

/**
 * What Estoque's outbox relay runs with by default (`estoque serve`, `estoque relay`): its batch
 * size, fallback poll, confirm timeout and retention.
 */
export const RELAY = {
  batchSize: int(ESTOQUE_RELAY_OPTIONS["batch-size"].default),
  pollMs: int(ESTOQUE_RELAY_OPTIONS["poll-interval"].default),
  confirmTimeoutMs: int(ESTOQUE_RELAY_OPTIONS["confirm-timeout"].default),
  retentionMs: int(ESTOQUE_RELAY_OPTIONS.retention.default),
} as const;
