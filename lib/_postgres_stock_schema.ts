/**
 * The PostgreSQL stock store's tables, its NOTIFY channel, and how its rows read.
 *
 * @module
 */

import type { RecordedMovement } from "./movement_replay.ts";
import type { OutboxRow, StockItem } from "./stock_store.ts";

/** The tables, created where missing (an idempotent migration). */
export function schemaSql(schema: string): string {
  return `
    CREATE SCHEMA IF NOT EXISTS ${schema};
    CREATE TABLE IF NOT EXISTS ${schema}.stock_items (
      color            text PRIMARY KEY,
      quantity         bigint NOT NULL CHECK (quantity >= 0),
      reorder_point    bigint NOT NULL CHECK (reorder_point >= 0),
      reorder_quantity bigint NOT NULL CHECK (reorder_quantity >= 1),
      updated_at       timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ${schema}.stock_movements (
      id             bigserial PRIMARY KEY,
      color          text NOT NULL,
      delta          bigint NOT NULL,
      quantity_after bigint NOT NULL,
      at             timestamptz NOT NULL,
      reason         text,
      ref_code       text
    );
    CREATE TABLE IF NOT EXISTS ${schema}.stock_outbox (
      id         bigserial PRIMARY KEY,
      ref_code   text NOT NULL UNIQUE,
      color_code text NOT NULL,
      quantity   bigint NOT NULL,
      created_at timestamptz NOT NULL,
      sent_at    timestamptz,
      attempts   integer NOT NULL DEFAULT 0,
      last_error text
    );
    ALTER TABLE ${schema}.stock_movements ADD COLUMN IF NOT EXISTS idempotency_key text;
    CREATE UNIQUE INDEX IF NOT EXISTS stock_movements_idempotency_key
      ON ${schema}.stock_movements (idempotency_key);
    CREATE INDEX IF NOT EXISTS stock_outbox_unsent ON ${schema}.stock_outbox (id)
      WHERE sent_at IS NULL;
    CREATE INDEX IF NOT EXISTS stock_outbox_sent ON ${schema}.stock_outbox (sent_at)
      WHERE sent_at IS NOT NULL;`;
}

/** The NOTIFY channel of a schema's outbox: channels are per database, schemas share them. */
export function outboxChannel(schema: string): string {
  return `stock_outbox_${schema}`.slice(0, 63);
}

/** A row of `stock_items` as an item. */
export function itemOf(row: Record<string, unknown>): StockItem {
  return {
    color: row.color as string,
    quantity: Number(row.quantity),
    reorderPoint: Number(row.reorder_point),
    reorderQuantity: Number(row.reorder_quantity),
    updatedAt: (row.updated_at as Date).toISOString(),
  };
}

/** A row of `stock_outbox` as an outbox row. */
export function outboxRowOf(row: Record<string, unknown>): OutboxRow {
  return {
    id: Number(row.id),
    refCode: row.ref_code as string,
    colorCode: row.color_code as string,
    quantity: Number(row.quantity),
    createdAt: row.created_at as Date,
    attempts: Number(row.attempts),
  };
}

/** The unique index on movements' idempotency keys (a second insert of a key fails on it). */
export const IDEMPOTENCY_KEY_INDEX = "stock_movements_idempotency_key";

/** Finds a movement by its idempotency key ($1), with its request and its item. */
export const RECORDED_MOVEMENT_SQL = `
  SELECT m.id, m.color, m.delta, m.reason, m.quantity_after, m.at, m.ref_code,
         o.id AS outbox_id, o.quantity AS outbox_quantity, o.attempts,
         i.reorder_point, i.reorder_quantity
  FROM stock_movements m
  LEFT JOIN stock_outbox o ON o.ref_code = m.ref_code
  LEFT JOIN stock_items i ON i.color = m.color
  WHERE m.idempotency_key = $1`;

/** A row of {@linkcode RECORDED_MOVEMENT_SQL} as a recorded movement. */
export function recordedOf(row: Record<string, unknown>): RecordedMovement {
  return {
    id: Number(row.id),
    color: row.color as string,
    delta: Number(row.delta),
    reason: (row.reason as string | null) ?? null,
    quantityAfter: Number(row.quantity_after),
    at: row.at as Date,
    refCode: (row.ref_code as string | null) ?? null,
    outbox: row.outbox_id === null ? undefined : {
      id: Number(row.outbox_id),
      quantity: Number(row.outbox_quantity),
      attempts: Number(row.attempts),
    },
    reorderPoint: Number(row.reorder_point ?? 0),
    reorderQuantity: Number(row.reorder_quantity ?? 0),
  };
}
