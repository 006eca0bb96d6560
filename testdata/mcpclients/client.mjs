// client.mjs drives backstage-mcp with the official MCP TypeScript SDK
// client, as an agent would, and prints one JSON report on stdout for the Go
// end-to-end tests (server/e2e/clients_e2e_test.go) to assert on.
//
//   node client.mjs stdio <command> [args...]   spawn the server, speak stdio
//   node client.mjs http <url>                  Streamable HTTP; the bearer
//                                               token, if any, is read from
//                                               MCP_BEARER_TOKEN (never argv)
//   node client.mjs challenge <url>             no token: follow the 401
//                                               challenge to the Protected
//                                               Resource Metadata and the
//                                               authorization server
//
// The stdio and http modes list the tools, call every tool with valid
// arguments (taken from the demo catalog, which the real Backstage of the
// e2e suite also loads) and check each result: not an error, structured
// content present and an object of the expected shape, a text block for
// clients that read only text. Every problem found goes in report.failures;
// the exit code is 0 when there is none, 1 otherwise, 2 on a crash.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  UnauthorizedError,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { readFileSync } from "node:fs";

const CALL_TIMEOUT_MS = 30_000;

const sdkVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isRef = (v) => typeof v === "string" && /^[a-z]+:[a-z0-9._-]+\/[a-z0-9._-]+$/i.test(v);

// expectRef checks that a field holds an entity ref, optionally a given one.
function expectRef(problems, sc, key, want) {
  if (!isRef(sc[key])) {
    problems.push(`${key} is not an entity ref: ${JSON.stringify(sc[key])}`);
  } else if (want && sc[key].toLowerCase() !== want) {
    problems.push(`${key} = ${sc[key]}, want ${want}`);
  }
}

// The calls: every tool at least once, with valid arguments, and the shape
// its structured content must have.
const CALLS = [
  {
    tool: "whoami",
    args: {},
    check(sc, p) {
      expectRef(p, sc, "user");
      if (!Array.isArray(sc.tools) || sc.tools.length === 0) p.push("tools is not a non-empty list");
      if (!Array.isArray(sc.ownershipRefs) || !sc.ownershipRefs.every(isRef)) p.push("ownershipRefs is not a list of refs");
    },
  },
  {
    tool: "catalog_get_entity",
    args: { ref: "component:default/checkout-service" },
    check(sc, p) {
      expectRef(p, sc, "ref", "component:default/checkout-service");
      expectRef(p, sc, "owner", "group:default/team-checkout");
      if (typeof sc.title !== "string" || sc.title === "") p.push("title missing");
      if (!Array.isArray(sc.relations) || !sc.relations.every((r) => typeof r.type === "string" && Array.isArray(r.refs) && typeof r.total === "number"))
        p.push("relations is not a list of {type, refs, total}");
    },
  },
  {
    tool: "catalog_get_entity",
    args: { ref: "api:default/payments-api", detail: "full" },
    check(sc, p) {
      if (!isObject(sc.metadata) || sc.metadata.name !== "payments-api") p.push("full entity has no metadata.name payments-api");
      if (typeof sc.kind !== "string" || sc.kind.toLowerCase() !== "api") p.push(`kind = ${JSON.stringify(sc.kind)}, want API`);
      if (!isObject(sc.spec)) p.push("full entity has no spec");
    },
  },
  {
    tool: "catalog_search_entities",
    args: { kind: "Component", owner: "team-checkout", limit: 2 },
    check(sc, p) {
      if (!Array.isArray(sc.items) || sc.items.length === 0) {
        p.push("items is not a non-empty list");
        return;
      }
      if (sc.items.length > 2) p.push(`${sc.items.length} items for limit 2`);
      for (const it of sc.items) {
        if (!isObject(it) || !isRef(it.ref) || !it.ref.startsWith("component:")) p.push(`item is not a component: ${JSON.stringify(it).slice(0, 200)}`);
        else if (it.owner !== "group:default/team-checkout") p.push(`${it.ref} owner = ${it.owner}`);
      }
    },
  },
  {
    tool: "catalog_get_relations",
    args: { ref: "component:default/checkout-service", relations: ["dependsOn"], depth: 2 },
    check(sc, p) {
      expectRef(p, sc, "root", "component:default/checkout-service");
      if (!Array.isArray(sc.nodes) || sc.nodes.length < 2) p.push("nodes has fewer than two entries");
      else if (!sc.nodes.every((n) => isObject(n) && isRef(n.ref))) p.push("a node has no ref");
    },
  },
  {
    tool: "catalog_list_changes",
    args: { since: "24h" },
    check(sc, p) {
      if (!Array.isArray(sc.changes)) p.push("changes is not a list");
    },
  },
  {
    tool: "catalog_find_dependents",
    args: { ref: "component:default/orders-service" },
    check(sc, p) {
      expectRef(p, sc, "root", "component:default/orders-service");
      if (!Array.isArray(sc.dependents) || sc.dependents.length < 4) p.push("dependents has fewer than four entries");
      else if (!sc.dependents.every((d) => isObject(d) && isRef(d.ref) && Number.isInteger(d.depth))) p.push("a dependent has no ref or depth");
      if (!Array.isArray(sc.owners) || sc.owners.length === 0) p.push("owners is not a non-empty list");
    },
  },
  {
    tool: "catalog_find_owner",
    args: { ref: "component:default/checkout-service" },
    check(sc, p) {
      expectRef(p, sc, "entity", "component:default/checkout-service");
      expectRef(p, sc, "owner", "group:default/team-checkout");
      if (!Array.isArray(sc.members)) p.push("members is not a list");
    },
  },
  {
    tool: "catalog_get_api_definition",
    args: { ref: "api:default/payments-api", maxBytes: 4096 },
    check(sc, p) {
      expectRef(p, sc, "ref", "api:default/payments-api");
      if (typeof sc.definition !== "string" || !sc.definition.includes("openapi")) p.push("definition is not the OpenAPI document");
      if (typeof sc.bytes !== "number" || sc.bytes <= 0) p.push("bytes is not a positive number");
    },
  },
  {
    tool: "catalog_list_facets",
    args: { facet: "spec.type", kind: "Component" },
    check(sc, p) {
      if (sc.facet !== "spec.type") p.push(`facet = ${JSON.stringify(sc.facet)}`);
      if (!Array.isArray(sc.values) || sc.values.length === 0) p.push("values is not a non-empty list");
      else if (!sc.values.every((v) => isObject(v) && typeof v.value === "string" && Number.isInteger(v.count) && v.count > 0)) p.push("a value is not {value, count}");
      else if (!sc.values.some((v) => v.value === "service")) p.push("no spec.type=service among the values");
    },
  },
];

// exercise connects, lists the tools and makes every call.
async function exercise(transport, mode) {
  const report = { mode, client: { name: "backstage-mcp-e2e-sdk", sdkVersion }, failures: [], tools: [], calls: [] };
  // The client tells the transport the negotiated version; record it.
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    report.protocolVersion = v;
    setVersion?.(v);
  };
  const client = new Client({ name: report.client.name, version: sdkVersion }, { capabilities: {} });
  try {
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
    report.requestedProtocolVersion = LATEST_PROTOCOL_VERSION;
    report.serverInfo = client.getServerVersion();
    report.capabilities = client.getServerCapabilities();
    if (!isObject(report.capabilities?.tools)) report.failures.push("server does not declare the tools capability");

    const listed = await client.listTools(undefined, { timeout: CALL_TIMEOUT_MS });
    for (const t of listed.tools) {
      report.tools.push({
        name: t.name,
        readOnlyHint: t.annotations?.readOnlyHint === true,
        hasInputSchema: isObject(t.inputSchema) && t.inputSchema.type === "object",
        hasOutputSchema: isObject(t.outputSchema),
      });
      if (!CALLS.some((c) => c.tool === t.name)) report.failures.push(`tool ${t.name} is listed but this client has no call for it`);
    }
    for (const c of CALLS) {
      if (!listed.tools.some((t) => t.name === c.tool)) {
        report.failures.push(`tool ${c.tool} is not listed`);
        continue;
      }
      report.calls.push(await callOne(client, c));
    }
    for (const c of report.calls) {
      for (const p of c.problems) report.failures.push(`${c.tool}(${JSON.stringify(c.args)}): ${p}`);
    }
  } finally {
    await client.close().catch(() => {});
  }
  return report;
}

// callOne calls one tool and checks its result.
async function callOne(client, c) {
  const out = { tool: c.tool, args: c.args, problems: [] };
  let res;
  try {
    // The SDK validates structuredContent against the tool's outputSchema
    // when the tool declares one.
    res = await client.callTool({ name: c.tool, arguments: c.args }, undefined, { timeout: CALL_TIMEOUT_MS });
  } catch (e) {
    out.problems.push(`protocol error: ${e?.message ?? e}`);
    return out;
  }
  out.isError = res.isError === true;
  if (out.isError) {
    out.problems.push(`tool error: ${textOf(res).slice(0, 500)}`);
    return out;
  }
  const sc = res.structuredContent;
  out.hasStructuredContent = sc !== undefined;
  if (!isObject(sc)) {
    out.problems.push(`structuredContent is not a JSON object: ${JSON.stringify(sc)?.slice(0, 200)}`);
    return out;
  }
  // Well-formed: survives a JSON round trip unchanged.
  const json = JSON.stringify(sc);
  if (JSON.stringify(JSON.parse(json)) !== json) out.problems.push("structuredContent does not survive a JSON round trip");
  out.structuredBytes = Buffer.byteLength(json);
  out.structuredContent = sc;
  if (textOf(res).trim() === "") out.problems.push("no text content for clients that ignore structuredContent");
  c.check(sc, out.problems);
  return out;
}

function textOf(res) {
  return (res.content ?? []).filter((b) => b?.type === "text").map((b) => b.text).join("\n");
}

// challenge plays a client that has no token yet.
async function challenge(url) {
  const report = { mode: "challenge", client: { name: "backstage-mcp-e2e-sdk", sdkVersion }, failures: [] };
  // 1. The plain request an SDK client opens with, without credentials.
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "backstage-mcp-e2e-sdk", version: sdkVersion } },
    }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  report.status = res.status;
  report.wwwAuthenticate = res.headers.get("www-authenticate");
  await res.body?.cancel();
  if (res.status !== 401) report.failures.push(`token-less initialize answered ${res.status}, want 401`);
  // 2. The SDK's own parsing of the challenge, then its discovery of the PRM.
  const params = extractWWWAuthenticateParams(res);
  report.resourceMetadataUrl = params.resourceMetadataUrl?.href ?? null;
  if (!params.resourceMetadataUrl) {
    report.failures.push("WWW-Authenticate has no resource_metadata");
    return report;
  }
  const prm = await discoverOAuthProtectedResourceMetadata(url, { resourceMetadataUrl: params.resourceMetadataUrl });
  report.protectedResourceMetadata = prm;
  if (!Array.isArray(prm.authorization_servers) || prm.authorization_servers.length === 0) {
    report.failures.push("PRM lists no authorization_servers");
  }
  // 3. A real SDK client with an OAuth provider: on the 401 it runs the
  // SDK's authorization flow (PRM, then the authorization server's
  // metadata) and asks us to send the user to the authorization URL.
  const provider = new RecordingProvider();
  const client = new Client({ name: "backstage-mcp-e2e-sdk", version: sdkVersion }, { capabilities: {} });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }), { timeout: CALL_TIMEOUT_MS });
    report.failures.push("the token-less SDK client connected: the endpoint is not protected");
  } catch (e) {
    report.sdkError = `${e?.name}: ${e?.message}`;
    report.sdkUnauthorized = e instanceof UnauthorizedError;
  } finally {
    await client.close().catch(() => {});
  }
  if (!provider.authorizationUrl) {
    report.failures.push(`the SDK client did not reach the authorization step (${report.sdkError})`);
  } else {
    const a = new URL(provider.authorizationUrl);
    report.authorization = {
      endpoint: a.origin + a.pathname,
      clientId: a.searchParams.get("client_id"),
      resource: a.searchParams.get("resource"),
      codeChallengeMethod: a.searchParams.get("code_challenge_method"),
      responseType: a.searchParams.get("response_type"),
      scope: a.searchParams.get("scope"),
    };
  }
  return report;
}

// RecordingProvider is an OAuthClientProvider for a client registered in
// advance (client ID from MCP_OAUTH_CLIENT_ID) that records the
// authorization URL instead of opening a browser.
class RecordingProvider {
  constructor() {
    this.authorizationUrl = null;
    this.verifier = null;
  }
  get redirectUrl() {
    return "http://127.0.0.1:1/callback";
  }
  get clientMetadata() {
    return { client_name: "backstage-mcp-e2e-sdk", redirect_uris: [this.redirectUrl], grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() {
    const id = process.env.MCP_OAUTH_CLIENT_ID;
    return id ? { client_id: id } : undefined;
  }
  tokens() {
    return undefined;
  }
  saveTokens() {}
  redirectToAuthorization(url) {
    this.authorizationUrl = url.href;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

function env() {
  const out = {};
  for (const [k, v] of Object.entries(process.env)) if (typeof v === "string") out[k] = v;
  return out;
}

async function main(argv) {
  const [mode, ...rest] = argv;
  switch (mode) {
    case "stdio": {
      if (rest.length === 0) throw new Error("usage: client.mjs stdio <command> [args...]");
      const transport = new StdioClientTransport({ command: rest[0], args: rest.slice(1), env: env(), stderr: "inherit" });
      return exercise(transport, "stdio");
    }
    case "http": {
      if (rest.length !== 1) throw new Error("usage: client.mjs http <url>");
      const headers = {};
      if (process.env.MCP_BEARER_TOKEN) headers.Authorization = `Bearer ${process.env.MCP_BEARER_TOKEN}`;
      const transport = new StreamableHTTPClientTransport(new URL(rest[0]), { requestInit: { headers } });
      return exercise(transport, "http");
    }
    case "challenge":
      if (rest.length !== 1) throw new Error("usage: client.mjs challenge <url>");
      return challenge(rest[0]);
    default:
      throw new Error("usage: client.mjs stdio <command> [args...] | http <url> | challenge <url>");
  }
}

try {
  const report = await main(process.argv.slice(2));
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  process.exitCode = report.failures.length === 0 ? 0 : 1;
} catch (e) {
  process.stderr.write(`client.mjs: ${e?.stack ?? e}\n`);
  process.exitCode = 2;
}
