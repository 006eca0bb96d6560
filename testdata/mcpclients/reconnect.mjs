// reconnect.mjs reconnects the way an IDE does: N times in a row it opens a
// Streamable HTTP session with the official MCP TypeScript SDK client, calls
// one tool and closes the client. The SDK's close() sends no DELETE (only
// transport.terminateSession() would), so every round leaves its session
// behind on the server. Prints one JSON report on stdout for
// server/e2e/sessions_e2e_test.go; the exit code is 0 when every round
// connected and got its answer, 1 otherwise, 2 on a crash.
//
//   MCP_BEARER_TOKEN=… node reconnect.mjs http <url> <rounds> [tool]
//   MCP_BEARER_TOKEN=… node reconnect.mjs mcp-remote <url> <rounds> [tool]
//
// mcp-remote mode speaks stdio to mcp-remote (the stdio-to-HTTP bridge many
// IDEs use), started anew each round and stopped at the end of it, as an
// IDE restarting it would; mcp-remote sends no DELETE either. The token
// reaches it through its ${VAR} expansion, never argv.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { createRequire } from "node:module";

const TIMEOUT_MS = 30_000;

async function main() {
  const [mode, url, roundsArg, tool = "whoami"] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  if (!["http", "mcp-remote"].includes(mode) || !url || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error("usage: node reconnect.mjs http|mcp-remote <url> <rounds> [tool]");
  }
  const headers = {};
  if (process.env.MCP_BEARER_TOKEN) headers.Authorization = `Bearer ${process.env.MCP_BEARER_TOKEN}`;
  const newTransport = () => {
    if (mode === "http") return new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
    const proxy = createRequire(import.meta.url).resolve("mcp-remote/dist/proxy.js");
    const args = [proxy, url, "--allow-http", "--transport", "http-only", "--silent"];
    if (headers.Authorization) args.push("--header", "Authorization:Bearer ${MCP_BEARER_TOKEN}");
    return new StdioClientTransport({ command: process.execPath, args, env: { ...process.env }, stderr: "pipe" });
  };
  const report = { mode, rounds, connected: 0, answered: 0, sessions: [], failures: [] };
  const start = Date.now();
  for (let i = 0; i < rounds; i++) {
    const transport = newTransport();
    const client = new Client({ name: "reconnect-e2e", version: "1.0.0" });
    try {
      await client.connect(transport, { timeout: TIMEOUT_MS });
      report.connected++;
      if (mode === "http") report.sessions.push(transport.sessionId ?? "");
      const res = await client.callTool({ name: tool, arguments: {} }, undefined, { timeout: TIMEOUT_MS });
      if (res.isError) {
        report.failures.push(`round ${i}: ${tool} answered with a tool error: ${JSON.stringify(res.content).slice(0, 300)}`);
      } else {
        report.answered++;
      }
    } catch (err) {
      report.failures.push(`round ${i}: ${String(err?.message ?? err).slice(0, 300)}`);
    } finally {
      await client.close().catch(() => {}); // no DELETE: the session stays behind
    }
  }
  report.ms = Date.now() - start;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`reconnect.mjs: ${err?.stack ?? err}\n`);
  process.exit(2);
});
