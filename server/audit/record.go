package audit

import (
	"encoding/json"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// GenesisHash is the prevHash of the very first record of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Type is the kind of event a record describes.
type Type string

// Record types.
const (
	// TypeCall is one agent tool call, whatever its outcome.
	TypeCall Type = "call"
	// TypeAuthFailure is a request rejected before any tool ran (missing,
	// invalid or insufficiently scoped credentials).
	TypeAuthFailure Type = "auth_failure"
	// TypeServerStart is written once when the server starts serving.
	TypeServerStart Type = "server_start"
	// TypeServerStop is written once when the server stops cleanly.
	TypeServerStop Type = "server_stop"
	// TypePolicyReload records a (successful or failed) policy reload.
	TypePolicyReload Type = "policy_reload"
	// TypeSession records a refused Streamable HTTP session: initialize
	// over a rate limit, the session store unavailable, or initialize
	// params that are not a valid object (those are aggregated per source
	// and interval, with Count). The session caps evict the least recently
	// used session instead of refusing.
	TypeSession Type = "session"
	// TypeCheckpoint carries the chain head signed with the checkpoint key
	// (see Checkpoint); written by the log itself, never by Append.
	TypeCheckpoint Type = "checkpoint"
	// TypeRetention records the removal of a rotated file by retention
	// (audit.retainAge, audit.retainBytes), written by the log itself just
	// before the file is removed (see Retention).
	TypeRetention Type = "retention"
)

// Valid reports whether t is one of the known record types.
func (t Type) Valid() bool {
	switch t {
	case TypeCall, TypeAuthFailure, TypeServerStart, TypeServerStop, TypePolicyReload, TypeSession, TypeCheckpoint, TypeRetention:
		return true
	}
	return false
}

// Decision is the outcome of a call: one of the six call decisions below
// (allowed, scope_denied, hidden_by_policy, rate_limited, refused, failed),
// or DecisionDeny on an authentication failure. Records written before the
// six existed say "allow" and "error" (and "deny" for every denial):
// Canonical maps them, so old trails stay readable by query and summary.
type Decision string

// Decisions.
const (
	// DecisionAllowed means the call was allowed and the tool answered it
	// (a tool's "not found" for an entity that does not exist included).
	DecisionAllowed Decision = "allowed"
	// DecisionScopeDenied means the agent's token scopes do not allow the
	// tool, whatever the policy grants the user.
	DecisionScopeDenied Decision = "scope_denied"
	// DecisionHiddenByPolicy means the policy hides what the call asked
	// for: a tool the caller may not call (answered "tool not found"), or
	// an entity the caller may not see (answered "not found").
	DecisionHiddenByPolicy Decision = "hidden_by_policy"
	// DecisionRateLimited means a token bucket refused the call; Limiter
	// names which (user, agent, global, ingress, session).
	DecisionRateLimited Decision = "rate_limited"
	// DecisionRefused means a gate refused the call before the tool
	// answered it: no verified identity, a limiter or store that is
	// unavailable (fail closed), a concurrency cap, an unknown tool or
	// invalid arguments. Stage names the gate, Limiter the limiter if any.
	DecisionRefused Decision = "refused"
	// DecisionFailed means the call was allowed but did not complete:
	// Backstage failed, redaction failed, the tool panicked. Stage names
	// where.
	DecisionFailed Decision = "failed"
	// DecisionDeny is the decision of an authentication failure (a request
	// rejected before any tool ran), and of every denied call in records
	// written before the call decisions above existed.
	DecisionDeny Decision = "deny"

	// DecisionAllow is how records written before the call decisions
	// spelled DecisionAllowed; the server no longer writes it, and
	// Canonical maps it (it stays for reading, and testing, old trails).
	DecisionAllow Decision = "allow"
	// DecisionError is how records written before the call decisions
	// spelled DecisionFailed (refusals included); the server no longer
	// writes it, and Canonical maps it.
	DecisionError Decision = "error"
)

// CallDecisions are the decisions a call record carries, in the order a
// reviewer reads them.
func CallDecisions() []Decision {
	return []Decision{DecisionAllowed, DecisionScopeDenied, DecisionHiddenByPolicy, DecisionRateLimited, DecisionRefused, DecisionFailed}
}

// Canonical is d as the current vocabulary spells it: "allow" (old
// records) is allowed, "error" is failed; anything else is itself.
func (d Decision) Canonical() Decision {
	switch d {
	case DecisionAllow:
		return DecisionAllowed
	case DecisionError:
		return DecisionFailed
	}
	return d
}

// Denial reports whether d denied the caller: scope_denied,
// hidden_by_policy, or deny (authentication failures and old records).
func (d Decision) Denial() bool {
	return d == DecisionScopeDenied || d == DecisionHiddenByPolicy || d == DecisionDeny
}

// Matches reports whether a record's decision d is what a reviewer asked
// for with want: the same decision once both are canonical, and for
// "deny" or "denied" any denial.
func (d Decision) Matches(want Decision) bool {
	if want == DecisionDeny || want == "denied" {
		return d.Denial()
	}
	return d.Canonical() == want.Canonical()
}

// KnownDecision reports whether d is a decision a record may carry, old
// spellings and "denied" (any denial) included.
func KnownDecision(d Decision) bool {
	switch d {
	case DecisionAllow, DecisionError, DecisionDeny, "denied":
		return true
	}
	return slices.Contains(CallDecisions(), d)
}

// Transports.
const (
	// TransportStdio is the stdio transport.
	TransportStdio = "stdio"
	// TransportHTTP is the Streamable HTTP transport.
	TransportHTTP = "http"
)

// User identifies the person an agent acts for. It never holds a token.
type User struct {
	// Sub is the verified subject claim of the user's token.
	Sub string `json:"sub,omitempty"`
	// Email is the verified email claim, if any.
	Email string `json:"email,omitempty"`
	// Ref is the Backstage User entity ref the user resolved to, e.g.
	// "user:default/jane.doe".
	Ref string `json:"ref,omitempty"`
	// Issuer is the iss claim of the verified token: Sub is unique only
	// within it.
	Issuer string `json:"iss,omitempty"`
	// TokenID is the jti claim of the verified token, to correlate a call
	// with the issuer's own log. It is never the token.
	TokenID string `json:"jti,omitempty"`
}

// Agent identifies the AI agent (MCP client) that made the call.
type Agent struct {
	// ClientID is the OAuth client id (azp/client_id claim) of the agent.
	ClientID string `json:"clientId,omitempty"`
	// Name is the MCP clientInfo name the agent announced.
	Name string `json:"name,omitempty"`
	// Version is the MCP clientInfo version the agent announced.
	Version string `json:"version,omitempty"`
}

// Entities summarises the catalog entities a call returned.
type Entities struct {
	// Refs are the entity refs returned, capped at Config.MaxEntityRefs.
	Refs []string `json:"refs,omitempty"`
	// Count is the total number of entities returned, even beyond the cap.
	Count int `json:"count"`
}

// Record is one audit event, written as one JSON line. Fields are encoded in
// this order and Hash is always last (the hash chain relies on it). There is
// deliberately no field for a token or any other credential.
type Record struct {
	// Time is when the event happened, encoded RFC 3339 with nanoseconds in
	// UTC. Append sets it to the current time when zero.
	Time time.Time `json:"time"`
	// ID is a unique random 128-bit identifier in hex, set by Append.
	ID string `json:"id"`
	// Seq is the position in the chain, starting at 1, set by Append.
	Seq uint64 `json:"seq"`
	// Replica names the process that wrote the record (Config.Replica);
	// each replica's records form their own chain.
	Replica string `json:"replica,omitempty"`
	// Type is the kind of event; required.
	Type Type `json:"type"`
	// SessionID is the MCP session id, if any.
	SessionID string `json:"sessionId,omitempty"`
	// Transport is TransportStdio or TransportHTTP.
	Transport string `json:"transport,omitempty"`
	// User is the person the agent acted for.
	User User `json:"user,omitzero"`
	// Agent is the calling agent.
	Agent Agent `json:"agent,omitzero"`
	// Tool is the MCP tool name.
	Tool string `json:"tool,omitempty"`
	// Arguments are the tool arguments, already redacted by the caller.
	// Append replaces arguments larger than Config.MaxArgumentBytes with a
	// JSON string noting their size.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// Decision is the outcome of the call.
	Decision Decision `json:"decision,omitempty"`
	// Reason explains a deny, rate limit or error in one line (capped).
	Reason string `json:"reason,omitempty"`
	// Rule names the policy rule (or rate limit) behind the decision.
	Rule string `json:"rule,omitempty"`
	// Entities are the entities the call returned.
	Entities Entities `json:"entities,omitzero"`
	// Stage names the stage that refused a call or where it failed
	// (identity, ratelimit, authz, arguments, tool, upstream, egress), set
	// with DecisionRefused, DecisionFailed and DecisionHiddenByPolicy.
	Stage string `json:"stage,omitempty"`
	// Limiter names the limiter behind DecisionRateLimited or
	// DecisionRefused: the bucket (user, agent, global, ingress, session)
	// or the store that failed closed (ratelimit-store, session-store).
	Limiter string `json:"limiter,omitempty"`
	// Hidden counts the entities the policy withheld from this call after
	// Backstage returned them (a read of a hidden entity: at least one).
	Hidden int `json:"hidden,omitempty"`
	// Redactions counts, per redaction rule id, the redaction markers in
	// what the call sent back: counted on the result's bytes after egress,
	// so an answer with no marker has none. Records written before this
	// counted every redaction a tool made, sent or not.
	Redactions map[string]int `json:"redactions,omitempty"`
	// Redacted breaks Redactions down by entity ref and field path, the
	// busiest MaxRedacted rows (the rest under ref "(other)").
	Redacted []Redaction `json:"redacted,omitempty"`
	// ArgumentRedactions counts, per rule, the redactions in the call's
	// arguments as kept in Arguments (what the agent sent, not what left).
	ArgumentRedactions map[string]int `json:"argumentRedactions,omitempty"`
	// UpstreamStatus is the last HTTP status Backstage answered, if any.
	UpstreamStatus int `json:"upstreamStatus,omitempty"`
	// DurationMs is the call duration in milliseconds.
	DurationMs float64 `json:"durationMs"`
	// ResultBytes is the size of the result returned to the agent.
	ResultBytes int `json:"resultBytes,omitempty"`
	// Source is the client address: the TCP peer, or with
	// server.trustedProxies the address X-Forwarded-For names (see
	// clientAddr in package server). Set on HTTP calls, sessions and
	// authentication failures; "(several)" on an aggregated record of
	// several sources.
	Source string `json:"source,omitempty"`
	// UserAgent is the HTTP User-Agent header of the request that carried
	// the call, sanitized (CleanUserAgent); caller input, proving nothing.
	UserAgent string `json:"userAgent,omitempty"`
	// Count is how many events an aggregated record stands for (for
	// refused unauthenticated requests: those of one interval); zero means
	// one.
	Count int `json:"count,omitempty"`
	// Sources breaks an aggregated record of several sources or reasons
	// down: the busiest (source, reason) pairs with their counts, at most
	// MaxSources, the rest under source "(other)". Source is then
	// "(several)".
	Sources []SourceCount `json:"sources,omitempty"`
	// InvalidUTF8 counts the bytes of invalid UTF-8 that Append replaced
	// with U+FFFD in the record's text (caller-supplied tool names,
	// arguments, client info…) so that the file stays valid UTF-8 JSON;
	// zero means none.
	InvalidUTF8 int `json:"invalidUTF8,omitempty"`
	// TraceID is the W3C trace ID of the server's own trace of the request
	// when tracing is on, so a record leads to its trace; Append sets it
	// from the context. It is always generated by this server, never taken
	// from the caller (see CallerTraceparent).
	TraceID string `json:"traceId,omitempty"`
	// CallerTraceparent is the W3C traceparent header the caller sent,
	// when it is well-formed (55 characters, version 00 form), kept for
	// correlation with the caller's own traces. It is caller input: it
	// names no trace of this server and proves nothing.
	CallerTraceparent string `json:"callerTraceparent,omitempty"`
	// Checkpoint is set on TypeCheckpoint records only: the signed head of
	// the chain.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Retention is set on TypeRetention records only: the file removed.
	Retention *Retention `json:"retention,omitempty"`
	// PrevHash is the hash of the previous record, or GenesisHash; set by
	// Append.
	PrevHash string `json:"prevHash"`
	// Hash is the hash of this record (see the package documentation); set by
	// Append. It must stay the last field.
	Hash string `json:"hash"`
}

// Retention describes a rotated file removed by retention: which records
// it held, so that `audit verify` can tell a chain that starts at seq N
// because the server removed seq 1..N-1 from one whose head was cut.
type Retention struct {
	// File is the base name of the removed file.
	File string `json:"file"`
	// FirstSeq and LastSeq bound the records the file held.
	FirstSeq uint64 `json:"firstSeq"`
	// LastSeq is the seq of the file's last record.
	LastSeq uint64 `json:"lastSeq"`
	// FirstPrevHash is the prevHash of the file's first record.
	FirstPrevHash string `json:"firstPrevHash"`
	// LastHash is the hash of the file's last record.
	LastHash string `json:"lastHash"`
	// Rule is the setting that removed it: "retainAge 720h0m0s" or
	// "retainBytes 1073741824".
	Rule string `json:"rule"`
}

// RedactionTotal returns the sum of the redaction counts of what r's call
// sent back (Redactions).
func (r *Record) RedactionTotal() int {
	n := 0
	for _, c := range r.Redactions {
		n += c
	}
	return n
}

// ArgumentRedactionTotal returns the sum of r's ArgumentRedactions.
func (r *Record) ArgumentRedactionTotal() int {
	n := 0
	for _, c := range r.ArgumentRedactions {
		n += c
	}
	return n
}

// MaxRedacted bounds Record.Redacted.
const MaxRedacted = 64

// Redaction is one row of Record.Redacted: how many markers of one rule
// left in one field of one entity.
type Redaction struct {
	// Rule is the redaction rule id.
	Rule string `json:"rule"`
	// Ref is the entity the field belongs to; empty for text outside any
	// entity (a facet value, the text block), "(other)" for the rows
	// beyond MaxRedacted.
	Ref string `json:"ref,omitempty"`
	// Path is the field path within the entity (or the result), keys
	// joined by ".", arrays as "[]": "metadata.annotations.vault/token".
	Path string `json:"path,omitempty"`
	// Count is the number of markers.
	Count int `json:"count"`
}

// MaxUserAgent bounds Record.UserAgent, in bytes.
const MaxUserAgent = 256

// CleanUserAgent is a User-Agent header as a record keeps it: control
// characters and invalid UTF-8 replaced by '?', at most MaxUserAgent
// bytes (cut at a character boundary, "…" appended). A clean header
// short enough is returned as it is, without allocating.
func CleanUserAgent(s string) string {
	clean := len(s) <= MaxUserAgent
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, min(len(s), MaxUserAgent+3))
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError || unicode.Is(unicode.Cf, r) {
			r = '?'
		}
		if len(b)+utf8.RuneLen(r) > MaxUserAgent {
			b = append(b, "…"...)
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// MaxSources bounds Record.Sources.
const MaxSources = 32

// SourceCount is one client address and refusal reason in an aggregated
// record, with how many requests it stands for.
type SourceCount struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}
