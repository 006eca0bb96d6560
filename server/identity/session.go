package identity

// SessionHeader is the Streamable HTTP session header. Session records,
// their owner and their lifecycle are kept by the server's session store
// (package server/state), shared by every replica.
const SessionHeader = "Mcp-Session-Id"
