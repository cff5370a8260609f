/**
 * The process: read the configuration, start the app, and stop it gracefully on SIGTERM/SIGINT
 * (health NOT_SERVING, in-flight calls drained within SHUTDOWN_GRACE_MS, database closed).
 */
import { startApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createLogger } from "./logger.js";

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`mplp-context: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger({ level: config.logLevel });
  let app;
  try {
    app = await startApp(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, "mplp-context failed to start");
    // The log is JSON for machines; a person at a terminal gets the reason (which setting, what to do) as one line too.
    console.error(`mplp-context: failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  const running = app;
  const stop = (signal: string) => {
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down: draining in-flight calls");
    running.stop().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

void main();
