/**
 * The fault-injection harness: runs a case on its deployment with a watch on its ledger, and
 * cleans up whatever happened. Its pieces: _cluster.ts (the brokers), _deployment.ts (the
 * deployment and its services as subprocesses), _load.ts (the mixed load) and _accounting.ts
 * (stalls, settling and the accounting every case ends with).
 *
 * @module
 */

import { closeReader, ProgressWatch } from "./_accounting.ts";
import { type Deployment, keepLog, removeDeployment, type Service } from "./_deployment.ts";

/**
 * Runs a case's body with a {@linkcode ProgressWatch} on its ledger; then, whatever happened,
 * kills its services (keeping their logs if it failed), runs `cleanup` and removes the deployment.
 */
export async function runCase(
  dep: Deployment,
  services: readonly Service[],
  body: (watch: ProgressWatch) => Promise<void>,
  cleanup?: () => Promise<void>,
): Promise<void> {
  const watch = new ProgressWatch(dep);
  try {
    await body(watch);
  } catch (error) {
    for (const service of services) keepLog(service);
    throw error;
  } finally {
    watch.stop();
    for (const service of services) await service.kill();
    await cleanup?.();
    await closeReader(dep);
    await removeDeployment(dep);
  }
}
