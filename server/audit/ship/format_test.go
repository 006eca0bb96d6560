package ship

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// get walks a decoded JSON object along keys.
func get(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", keys, k)
		}
		v = o[k]
	}
	return v
}

func encodeMap(t *testing.T, f Format, r *audit.Record) map[string]any {
	t.Helper()
	b, err := Encode(f, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v: %s", f, err, b)
	}
	return m
}

func sampleRecord() *audit.Record {
	r := callRecord(7)
	r.Time = time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
	r.ID, r.Seq, r.Replica = "a1b2", 42, "pod-0"
	r.PrevHash, r.Hash = "p", "h"
	return r
}

func TestOCSFAPIActivity(t *testing.T) {
	m := encodeMap(t, FormatOCSF, sampleRecord())
	want := map[string]any{
		"class_uid": 6003.0, "category_uid": 6.0, "activity_id": 2.0, "type_uid": 600302.0,
		"time":        float64(time.Date(2026, 12, 7, 10, 0, 0, 123000000, time.UTC).UnixMilli()),
		"severity_id": 1.0, "status_id": 1.0, "status_code": "allowed", "duration": 12.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for path, v := range map[string]any{
		"actor.user.uid": "00u1", "actor.user.name": "user:default/jane", "actor.user.email_addr": "jane@example.com",
		"actor.app_name": "vscode", "actor.app_uid": "copilot", "actor.session.uid": "sess-1",
		"api.operation": "catalog_get_entity", "api.request.uid": "a1b2", "api.service.name": "backstage-mcp",
		"metadata.version": OCSFVersion, "metadata.uid": "a1b2", "metadata.sequence": 42.0,
		"metadata.product.name": "backstage-mcp", "metadata.correlation_uid": "4bf92f3577b34da6a3ce929d0e0e4736",
		"unmapped.hash": "h", "unmapped.prev_hash": "p", "unmapped.replica": "pod-0", "unmapped.agent_version": "1.99",
		"unmapped.redactions.aws-access-key": 1.0, "unmapped.arguments.ref": "component:default/svc-7",
		"src_endpoint.svc_name": "http", "src_endpoint.ip": "198.51.100.4",
		"http_request.user_agent": "vscode-mcp/1.99 (linux)", "actor.idp.name": "https://idp.example.com",
		"unmapped.jti": "jti-1",
	} {
		if got := get(t, m, split(path)...); got != v {
			t.Errorf("%s = %v, want %v", path, got, v)
		}
	}
	az := get(t, m, "actor", "authorizations").([]any)[0].(map[string]any)
	if az["decision"] != "allowed" || get(t, az, "policy", "name") != "role:dev" {
		t.Errorf("authorizations %v", az)
	}
	res := m["resources"].([]any)[0].(map[string]any)
	if res["uid"] != "component:default/svc-7" || res["type"] != "backstage_entity" {
		t.Errorf("resources %v", res)
	}

	deny := sampleRecord()
	deny.Decision, deny.Reason = audit.DecisionHiddenByPolicy, "tool not granted"
	m = encodeMap(t, FormatOCSF, deny)
	if m["status_id"] != 2.0 || m["severity_id"] != 3.0 || m["status_detail"] != "tool not granted" || m["status_code"] != "hidden_by_policy" {
		t.Errorf("deny: status %v severity %v detail %v", m["status_id"], m["severity_id"], m["status_detail"])
	}
	old := sampleRecord()
	old.Decision = audit.DecisionAllow // a record written before the call decisions
	if m = encodeMap(t, FormatOCSF, old); m["status_id"] != 1.0 || m["status_code"] != "allowed" {
		t.Errorf("old allow: status %v code %v", m["status_id"], m["status_code"])
	}
	ref := sampleRecord()
	ref.Decision, ref.Stage, ref.Limiter = audit.DecisionRefused, "ratelimit", "ratelimit-store"
	m = encodeMap(t, FormatOCSF, ref)
	if m["status_id"] != 2.0 || get(t, m, "unmapped", "limiter") != "ratelimit-store" || get(t, m, "unmapped", "stage") != "ratelimit" {
		t.Errorf("refused: %v", m)
	}
	af := &audit.Record{Type: audit.TypeAuthFailure, Reason: "invalid token", Source: "203.0.113.9:5555", Count: 4, Seq: 3}
	m = encodeMap(t, FormatOCSF, af)
	if m["activity_id"] != 99.0 || m["type_uid"] != 600399.0 || m["status_id"] != 2.0 ||
		get(t, m, "src_endpoint", "ip") != "203.0.113.9" || m["count"] != 4.0 {
		t.Errorf("auth failure: %v", m)
	}
}

func TestECSDocument(t *testing.T) {
	m := encodeMap(t, FormatECS, sampleRecord())
	for path, v := range map[string]any{
		"@timestamp": "2026-12-07T10:00:00.123456789Z", "ecs.version": ECSVersion,
		"event.kind": "event", "event.action": "catalog_get_entity", "event.outcome": "success",
		"event.id": "a1b2", "event.sequence": 42.0, "event.duration": 12.5e6, "event.hash": "h",
		"event.dataset": "backstage_mcp.audit", "user.id": "00u1", "user.email": "jane@example.com",
		"user.name": "user:default/jane", "user_agent.name": "vscode", "user_agent.version": "1.99",
		"user_agent.original": "vscode-mcp/1.99 (linux)", "source.ip": "198.51.100.4",
		"backstage_mcp.issuer": "https://idp.example.com", "backstage_mcp.token_id": "jti-1",
		"rule.name": "role:dev", "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736",
		"service.name": "backstage-mcp", "service.node.name": "pod-0",
		"backstage_mcp.client_id": "copilot", "backstage_mcp.session_id": "sess-1",
		"backstage_mcp.decision": "allowed", "backstage_mcp.prev_hash": "p", "backstage_mcp.entities.count": 1.0,
	} {
		if got := get(t, m, split(path)...); got != v {
			t.Errorf("%s = %v, want %v", path, got, v)
		}
	}
	if c := get(t, m, "event", "category").([]any); len(c) != 1 || c[0] != "api" {
		t.Errorf("event.category %v", c)
	}
	if ty := get(t, m, "event", "type").([]any); len(ty) != 2 || ty[1] != "allowed" {
		t.Errorf("event.type %v", ty)
	}
	rl := sampleRecord()
	rl.Decision = audit.DecisionRateLimited
	m = encodeMap(t, FormatECS, rl)
	if get(t, m, "event", "outcome") != "failure" || get(t, m, "event", "type").([]any)[1] != "denied" {
		t.Errorf("rate limited: %v", m["event"])
	}
	af := &audit.Record{Type: audit.TypeAuthFailure, Source: "2001:db8::1", Reason: "expired"}
	m = encodeMap(t, FormatECS, af)
	if get(t, m, "event", "category").([]any)[0] != "authentication" || get(t, m, "source", "ip") != "2001:db8::1" ||
		get(t, m, "event", "outcome") != "failure" {
		t.Errorf("auth failure: %v", m)
	}
}

func split(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' && p[:i] != "@timestamp" {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}
