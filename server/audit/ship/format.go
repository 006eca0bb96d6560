package ship

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// Versions of the schemas the ocsf and ecs formats follow.
const (
	OCSFVersion = "1.3.0"
	ECSVersion  = "8.17.0"
	product     = "backstage-mcp"
)

// OCSF API Activity constants.
const (
	ocsfCategoryUID   = 6    // Application Activity
	ocsfClassUID      = 6003 // API Activity
	ocsfActivityRead  = 2
	ocsfActivityOther = 99
)

// Encode returns the record in format f as one JSON object without a
// trailing newline. line is the record's exact line in the audit file,
// returned as is for FormatNative.
func Encode(f Format, line []byte, rec *audit.Record) ([]byte, error) {
	switch f {
	case FormatNative, "":
		return bytes.TrimRight(line, "\r\n"), nil
	case FormatOCSF:
		return marshal(ocsfOf(rec))
	case FormatECS:
		return marshal(ecsOf(rec))
	}
	return nil, fmt.Errorf("ship: unknown format %q", f)
}

// marshal encodes v without HTML escaping (the JSON goes to log systems,
// not to a browser).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("ship: encode: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// failed reports whether the record stands for a refused or failed event.
func failed(r *audit.Record) bool {
	return r.Type == audit.TypeAuthFailure || r.Type == audit.TypeSession ||
		(r.Decision != "" && r.Decision.Canonical() != audit.DecisionAllowed)
}

// summary is the one-line message of a record.
func summary(r *audit.Record) string {
	parts := []string{string(r.Type)}
	if r.Tool != "" {
		parts = append(parts, r.Tool)
	}
	if r.Decision != "" {
		parts = append(parts, string(r.Decision.Canonical()))
	}
	who := r.User.Ref
	if who == "" {
		who = r.User.Email
	}
	if who == "" {
		who = r.User.Sub
	}
	if who != "" {
		parts = append(parts, "by "+who)
	}
	if a := agentName(r); a != "" {
		parts = append(parts, "via "+a)
	}
	s := strings.Join(parts, " ")
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

func agentName(r *audit.Record) string {
	if r.Agent.Name != "" {
		return r.Agent.Name
	}
	return r.Agent.ClientID
}

// sourceIP returns the IP of a record's source address, if it has one.
func sourceIP(src string) string {
	if src == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(src); err == nil {
		src = h
	}
	if ip := net.ParseIP(src); ip != nil {
		return ip.String()
	}
	return ""
}

// ---- OCSF ----

type ocsfEvent struct {
	ActivityID   int            `json:"activity_id"`
	ActivityName string         `json:"activity_name"`
	CategoryUID  int            `json:"category_uid"`
	CategoryName string         `json:"category_name"`
	ClassUID     int            `json:"class_uid"`
	ClassName    string         `json:"class_name"`
	TypeUID      int            `json:"type_uid"`
	TypeName     string         `json:"type_name"`
	Time         int64          `json:"time"`
	SeverityID   int            `json:"severity_id"`
	Severity     string         `json:"severity"`
	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusCode   string         `json:"status_code,omitempty"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message"`
	Duration     int64          `json:"duration,omitempty"`
	Count        int            `json:"count,omitempty"`
	Actor        ocsfActor      `json:"actor"`
	API          ocsfAPI        `json:"api"`
	HTTPRequest  *ocsfHTTP      `json:"http_request,omitempty"`
	SrcEndpoint  ocsfEndpoint   `json:"src_endpoint"`
	Resources    []ocsfResource `json:"resources,omitempty"`
	Metadata     ocsfMetadata   `json:"metadata"`
	Unmapped     ocsfUnmapped   `json:"unmapped"`
}

type ocsfActor struct {
	User           *ocsfUser   `json:"user,omitempty"`
	IdP            *ocsfName   `json:"idp,omitempty"`
	AppName        string      `json:"app_name,omitempty"`
	AppUID         string      `json:"app_uid,omitempty"`
	Session        *ocsfUID    `json:"session,omitempty"`
	Authorizations []ocsfAuthz `json:"authorizations,omitempty"`
}

type ocsfUser struct {
	UID       string `json:"uid,omitempty"`
	Name      string `json:"name,omitempty"`
	EmailAddr string `json:"email_addr,omitempty"`
}

type ocsfUID struct {
	UID string `json:"uid"`
}

type ocsfAuthz struct {
	Decision string    `json:"decision"`
	Policy   *ocsfName `json:"policy,omitempty"`
}

type ocsfName struct {
	Name string `json:"name"`
}

type ocsfAPI struct {
	Operation string   `json:"operation"`
	Request   ocsfUID  `json:"request"`
	Service   ocsfName `json:"service"`
}

type ocsfHTTP struct {
	UserAgent string `json:"user_agent"`
}

type ocsfEndpoint struct {
	IP      string `json:"ip,omitempty"`
	SvcName string `json:"svc_name,omitempty"`
}

type ocsfResource struct {
	UID  string `json:"uid"`
	Type string `json:"type"`
}

type ocsfMetadata struct {
	Version        string      `json:"version"`
	Product        ocsfProduct `json:"product"`
	UID            string      `json:"uid"`
	Sequence       uint64      `json:"sequence"`
	LogName        string      `json:"log_name"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
}

type ocsfProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// ocsfUnmapped holds what OCSF has no attribute for, under the record's own
// names.
type ocsfUnmapped struct {
	Type               audit.Type        `json:"type"`
	Replica            string            `json:"replica,omitempty"`
	Transport          string            `json:"transport,omitempty"`
	AgentVersion       string            `json:"agent_version,omitempty"`
	Arguments          json.RawMessage   `json:"arguments,omitempty"`
	EntityCount        int               `json:"entity_count,omitempty"`
	Redactions         map[string]int    `json:"redactions,omitempty"`
	Redacted           []audit.Redaction `json:"redacted,omitempty"`
	ArgumentRedactions map[string]int    `json:"argument_redactions,omitempty"`
	Stage              string            `json:"stage,omitempty"`
	Limiter            string            `json:"limiter,omitempty"`
	Hidden             int               `json:"hidden,omitempty"`
	TokenID            string            `json:"jti,omitempty"`
	UpstreamStatus     int               `json:"upstream_status,omitempty"`
	ResultBytes        int               `json:"result_bytes,omitempty"`
	Source             string            `json:"source,omitempty"`
	CallerTraceparent  string            `json:"caller_traceparent,omitempty"`
	InvalidUTF8        int               `json:"invalid_utf8,omitempty"`
	PrevHash           string            `json:"prev_hash"`
	Hash               string            `json:"hash"`
}

// ocsfSeverity maps a record to an OCSF severity_id and its name.
func ocsfSeverity(r *audit.Record) (int, string) {
	d := r.Decision.Canonical()
	switch {
	case r.Type == audit.TypeAuthFailure, d.Denial():
		return 3, "Medium"
	case d == audit.DecisionRateLimited, d == audit.DecisionRefused, d == audit.DecisionFailed, r.Type == audit.TypeSession:
		return 2, "Low"
	}
	return 1, "Informational"
}

func ocsfOf(r *audit.Record) ocsfEvent {
	act, actName := ocsfActivityOther, "Other"
	if r.Type == audit.TypeCall {
		// Every tool is read-only.
		act, actName = ocsfActivityRead, "Read"
	}
	sev, sevName := ocsfSeverity(r)
	status, statusName := 1, "Success"
	if failed(r) {
		status, statusName = 2, "Failure"
	}
	op := r.Tool
	if op == "" {
		op = string(r.Type)
	}
	e := ocsfEvent{
		ActivityID: act, ActivityName: actName,
		CategoryUID: ocsfCategoryUID, CategoryName: "Application Activity",
		ClassUID: ocsfClassUID, ClassName: "API Activity",
		TypeUID: ocsfClassUID*100 + act, TypeName: "API Activity: " + actName,
		Time:       r.Time.UnixMilli(),
		SeverityID: sev, Severity: sevName,
		StatusID: status, Status: statusName,
		StatusCode:   string(r.Decision.Canonical()),
		StatusDetail: r.Reason,
		Message:      summary(r),
		Duration:     int64(r.DurationMs),
		Count:        r.Count,
		API: ocsfAPI{
			Operation: op,
			Request:   ocsfUID{UID: r.ID},
			Service:   ocsfName{Name: product},
		},
		SrcEndpoint: ocsfEndpoint{IP: sourceIP(r.Source), SvcName: r.Transport},
		Metadata: ocsfMetadata{
			Version:        OCSFVersion,
			Product:        ocsfProduct{Name: product, VendorName: product},
			UID:            r.ID,
			Sequence:       r.Seq,
			LogName:        "audit",
			CorrelationUID: r.TraceID,
		},
		Unmapped: ocsfUnmapped{
			Type: r.Type, Replica: r.Replica, Transport: r.Transport,
			AgentVersion: r.Agent.Version, Arguments: r.Arguments,
			EntityCount: r.Entities.Count, Redactions: r.Redactions,
			Redacted: r.Redacted, ArgumentRedactions: r.ArgumentRedactions,
			Stage: r.Stage, Limiter: r.Limiter, Hidden: r.Hidden, TokenID: r.User.TokenID,
			UpstreamStatus: r.UpstreamStatus, ResultBytes: r.ResultBytes,
			Source: r.Source, CallerTraceparent: r.CallerTraceparent,
			InvalidUTF8: r.InvalidUTF8, PrevHash: r.PrevHash, Hash: r.Hash,
		},
	}
	if r.User != (audit.User{}) {
		e.Actor.User = &ocsfUser{UID: r.User.Sub, Name: r.User.Ref, EmailAddr: r.User.Email}
	}
	if r.User.Issuer != "" {
		e.Actor.IdP = &ocsfName{Name: r.User.Issuer}
	}
	if r.UserAgent != "" {
		e.HTTPRequest = &ocsfHTTP{UserAgent: r.UserAgent}
	}
	e.Actor.AppName = r.Agent.Name
	e.Actor.AppUID = r.Agent.ClientID
	if r.SessionID != "" {
		e.Actor.Session = &ocsfUID{UID: r.SessionID}
	}
	if r.Decision != "" {
		a := ocsfAuthz{Decision: string(r.Decision.Canonical())}
		if r.Rule != "" {
			a.Policy = &ocsfName{Name: r.Rule}
		}
		e.Actor.Authorizations = []ocsfAuthz{a}
	}
	for _, ref := range r.Entities.Refs {
		e.Resources = append(e.Resources, ocsfResource{UID: ref, Type: "backstage_entity"})
	}
	return e
}

// ---- ECS ----

type ecsDoc struct {
	Timestamp string     `json:"@timestamp"`
	Message   string     `json:"message"`
	ECS       ecsVersion `json:"ecs"`
	Event     ecsEvent   `json:"event"`
	User      *ecsUser   `json:"user,omitempty"`
	UserAgent *ecsUA     `json:"user_agent,omitempty"`
	Source    *ecsSource `json:"source,omitempty"`
	Rule      *ecsName   `json:"rule,omitempty"`
	Trace     *ecsID     `json:"trace,omitempty"`
	Service   ecsService `json:"service"`
	Own       ecsOwn     `json:"backstage_mcp"`
}

type ecsVersion struct {
	Version string `json:"version"`
}

type ecsEvent struct {
	Kind     string   `json:"kind"`
	Category []string `json:"category"`
	Type     []string `json:"type"`
	Action   string   `json:"action"`
	Outcome  string   `json:"outcome"`
	ID       string   `json:"id"`
	Sequence uint64   `json:"sequence"`
	Duration int64    `json:"duration,omitempty"`
	Dataset  string   `json:"dataset"`
	Module   string   `json:"module"`
	Provider string   `json:"provider"`
	Reason   string   `json:"reason,omitempty"`
	Hash     string   `json:"hash"`
}

type ecsUser struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

type ecsUA struct {
	Original string `json:"original,omitempty"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
}

type ecsSource struct {
	Address string `json:"address"`
	IP      string `json:"ip,omitempty"`
}

type ecsName struct {
	Name string `json:"name"`
}

type ecsID struct {
	ID string `json:"id"`
}

type ecsService struct {
	Name string   `json:"name"`
	Node *ecsName `json:"node,omitempty"`
}

// ecsOwn holds the fields ECS has no place for, under backstage_mcp.
type ecsOwn struct {
	Type               audit.Type        `json:"type"`
	Tool               string            `json:"tool,omitempty"`
	Decision           audit.Decision    `json:"decision,omitempty"`
	SessionID          string            `json:"session_id,omitempty"`
	Transport          string            `json:"transport,omitempty"`
	ClientID           string            `json:"client_id,omitempty"`
	Arguments          json.RawMessage   `json:"arguments,omitempty"`
	Entities           *audit.Entities   `json:"entities,omitempty"`
	Redactions         map[string]int    `json:"redactions,omitempty"`
	Redacted           []audit.Redaction `json:"redacted,omitempty"`
	ArgumentRedactions map[string]int    `json:"argument_redactions,omitempty"`
	Stage              string            `json:"stage,omitempty"`
	Limiter            string            `json:"limiter,omitempty"`
	Hidden             int               `json:"hidden,omitempty"`
	Issuer             string            `json:"issuer,omitempty"`
	TokenID            string            `json:"token_id,omitempty"`
	UpstreamStatus     int               `json:"upstream_status,omitempty"`
	ResultBytes        int               `json:"result_bytes,omitempty"`
	Count              int               `json:"count,omitempty"`
	CallerTraceparent  string            `json:"caller_traceparent,omitempty"`
	InvalidUTF8        int               `json:"invalid_utf8,omitempty"`
	PrevHash           string            `json:"prev_hash"`
}

// ecsCategory returns event.category and event.type for a record.
func ecsCategory(r *audit.Record) ([]string, []string) {
	switch r.Type {
	case audit.TypeCall:
		switch d := r.Decision.Canonical(); {
		case d == audit.DecisionAllowed:
			return []string{"api"}, []string{"access", "allowed"}
		case d.Denial(), d == audit.DecisionRateLimited, d == audit.DecisionRefused:
			return []string{"api"}, []string{"access", "denied"}
		}
		return []string{"api"}, []string{"access"}
	case audit.TypeAuthFailure:
		return []string{"authentication"}, []string{"start"}
	case audit.TypeServerStart:
		return []string{"process"}, []string{"start"}
	case audit.TypeServerStop:
		return []string{"process"}, []string{"end"}
	case audit.TypePolicyReload:
		return []string{"configuration"}, []string{"change"}
	case audit.TypeSession:
		// ECS expects start, end or info under session; the refusal is in
		// event.outcome.
		return []string{"session"}, []string{"info"}
	}
	return []string{"api"}, []string{"info"}
}

func ecsOf(r *audit.Record) ecsDoc {
	cat, typ := ecsCategory(r)
	outcome := "success"
	switch {
	case failed(r):
		outcome = "failure"
	case r.Decision == "" && r.Type == audit.TypeCall:
		outcome = "unknown"
	}
	action := r.Tool
	if action == "" {
		action = string(r.Type)
	}
	d := ecsDoc{
		Timestamp: r.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		Message:   summary(r),
		ECS:       ecsVersion{Version: ECSVersion},
		Event: ecsEvent{
			Kind: "event", Category: cat, Type: typ, Action: action, Outcome: outcome,
			ID: r.ID, Sequence: r.Seq, Duration: int64(r.DurationMs * 1e6),
			Dataset: "backstage_mcp.audit", Module: "backstage_mcp", Provider: product,
			Reason: r.Reason, Hash: r.Hash,
		},
		Service: ecsService{Name: product},
		Own: ecsOwn{
			Type: r.Type, Tool: r.Tool, Decision: r.Decision.Canonical(), SessionID: r.SessionID,
			Redacted: r.Redacted, ArgumentRedactions: r.ArgumentRedactions,
			Stage: r.Stage, Limiter: r.Limiter, Hidden: r.Hidden,
			Issuer: r.User.Issuer, TokenID: r.User.TokenID,
			Transport: r.Transport, ClientID: r.Agent.ClientID, Arguments: r.Arguments,
			Redactions: r.Redactions, UpstreamStatus: r.UpstreamStatus,
			ResultBytes: r.ResultBytes, Count: r.Count,
			CallerTraceparent: r.CallerTraceparent, InvalidUTF8: r.InvalidUTF8,
			PrevHash: r.PrevHash,
		},
	}
	if r.Type == audit.TypeCall {
		ents := r.Entities
		d.Own.Entities = &ents
	}
	if r.User != (audit.User{}) {
		d.User = &ecsUser{ID: r.User.Sub, Name: r.User.Ref, Email: r.User.Email}
	}
	if r.Agent.Name != "" || r.Agent.Version != "" || r.UserAgent != "" {
		d.UserAgent = &ecsUA{Original: r.UserAgent, Name: r.Agent.Name, Version: r.Agent.Version}
	}
	if r.Source != "" {
		d.Source = &ecsSource{Address: r.Source, IP: sourceIP(r.Source)}
	}
	if r.Rule != "" {
		d.Rule = &ecsName{Name: r.Rule}
	}
	if r.TraceID != "" {
		d.Trace = &ecsID{ID: r.TraceID}
	}
	if r.Replica != "" {
		d.Service.Node = &ecsName{Name: r.Replica}
	}
	return d
}
