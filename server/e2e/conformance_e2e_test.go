//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"go.yaml.in/yaml/v3"
)

// expectedFailuresFile lists the conformance scenarios the server is known
// not to pass, each with its reason.
const expectedFailuresFile = "testdata/conformance/expected-failures.yaml"

// mustPass are scenarios that apply to every MCP server over Streamable
// HTTP; they must run and pass whatever the expected-failures file says.
var mustPass = []string{"server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection",
	"resources-list", "prompts-list", "completion-complete"}

// missingFixture matches the only failures an expected-failure entry may
// have: "method not found" for a capability the server does not declare,
// or an unknown tool, prompt or resource (the reference server's fixtures).
// Suites from 0.2.0 on report the message without the "MCP error" prefix.
var missingFixture = regexp.MustCompile(`(MCP error -32601: )?(logging|completions|resources|resources subscribe|prompts) not supported|` +
	`(MCP error -32602: )?(tool|prompt) '[a-z0-9_]+' not found|Tool '[a-z0-9_]+' not found|` +
	`(MCP error -32002: )?handler not found for resource URI 'test://[a-z0-9/_{}-]+'`)

// expectedFailure is one entry of the expected-failures file.
type expectedFailure struct {
	Scenario string
	Reason   string
	Line     int
}

// loadExpectedFailures reads the file the suite reads, and insists on a
// reason (the entry's line comment) for every entry.
func loadExpectedFailures(t *testing.T, path string) []expectedFailure {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: want a mapping with a server key", path)
	}
	root := doc.Content[0]
	var out []expectedFailure
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if key.Value != "server" {
			t.Errorf("%s:%d: unexpected key %q (only server scenarios apply)", path, key.Line, key.Value)
			continue
		}
		if val.Kind != yaml.SequenceNode {
			t.Fatalf("%s:%d: server must be a list of scenario names", path, val.Line)
		}
		for _, it := range val.Content {
			reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(it.LineComment), "#"))
			if it.Kind != yaml.ScalarNode || it.Value == "" {
				t.Errorf("%s:%d: entry is not a scenario name", path, it.Line)
				continue
			}
			if len(reason) < 20 {
				t.Errorf("%s:%d: %s has no reason (write it after # on the same line)", path, it.Line, it.Value)
			}
			if seen[it.Value] {
				t.Errorf("%s:%d: %s is listed twice", path, it.Line, it.Value)
			}
			seen[it.Value] = true
			out = append(out, expectedFailure{Scenario: it.Value, Reason: reason, Line: it.Line})
		}
	}
	return out
}

// conformanceCheck is one check of a scenario, as the suite saves it.
type conformanceCheck struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

// scenarioResult sums up one scenario.
type scenarioResult struct {
	Name                     string
	Ran                      bool
	Passed, Failed, Warnings int
	Errors                   []string
}

// failed is the suite's own rule for its baseline: any failure or warning.
func (r *scenarioResult) failed() bool { return !r.Ran || r.Failed > 0 || r.Warnings > 0 }

func (r *scenarioResult) status() string {
	switch {
	case !r.Ran:
		return "did not run"
	case r.failed():
		return fmt.Sprintf("FAIL (%d passed, %d failed, %d warnings)", r.Passed, r.Failed, r.Warnings)
	default:
		return fmt.Sprintf("pass (%d checks)", r.Passed)
	}
}

// conformanceRun is one run of `conformance server`.
type conformanceRun struct {
	Order   []string
	Results map[string]*scenarioResult
	Stdout  string
	Code    int
}

var (
	runningScenario = regexp.MustCompile(`(?m)^=== Running scenario: (\S+) ===$`)
	resultDir       = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)
)

// runConformance runs the suite against url and reads the checks it saves
// for every scenario.
func runConformance(t *testing.T, dir, url string, args ...string) conformanceRun {
	t.Helper()
	entry := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	return runConformanceWith(t, "node", dir, entry, url, args...)
}

// runConformanceWith runs the suite at entry with the given node binary.
func runConformanceWith(t *testing.T, node, dir, entry, url string, args ...string) conformanceRun {
	t.Helper()
	out := t.TempDir()
	start := time.Now()
	run := runNodeBin(t, node, dir, []string{"NO_COLOR=1"}, 10*time.Minute,
		append([]string{entry, "server", "--url", url, "-o", out}, args...)...)
	t.Logf("conformance server --url %s %s: exit %d in %s", url, strings.Join(args, " "), run.Code, time.Since(start).Round(time.Millisecond))
	cr := conformanceRun{Results: map[string]*scenarioResult{}, Stdout: string(run.Stdout), Code: run.Code}
	// The whole suite announces every scenario; --scenario runs one, silently.
	if i := slices.Index(args, "--scenario"); i >= 0 && i+1 < len(args) {
		cr.Order = []string{args[i+1]}
	}
	for _, m := range runningScenario.FindAllStringSubmatch(cr.Stdout, -1) {
		cr.Order = append(cr.Order, m[1])
	}
	for _, name := range cr.Order {
		cr.Results[name] = &scenarioResult{Name: name}
	}
	if len(cr.Order) == 0 {
		t.Fatalf("the suite ran no scenario:\n%s\n%s", tailString(cr.Stdout, 3000), tailString(run.Stderr, 3000))
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		r, ok := cr.Results[m[1]]
		if !ok {
			t.Errorf("results for %s, which the suite did not announce", m[1])
			continue
		}
		raw, err := os.ReadFile(filepath.Join(out, e.Name(), "checks.json"))
		if err != nil {
			t.Fatal(err)
		}
		var checks []conformanceCheck
		if err := json.Unmarshal(raw, &checks); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		r.Ran = true
		for _, c := range checks {
			switch c.Status {
			case "SUCCESS":
				r.Passed++
			case "FAILURE":
				r.Failed++
				r.Errors = append(r.Errors, c.Name+": "+firstNonEmpty(c.ErrorMessage, c.Description))
			case "WARNING":
				r.Warnings++
				r.Errors = append(r.Errors, c.Name+" (warning): "+firstNonEmpty(c.ErrorMessage, c.Description))
			}
		}
	}
	return cr
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// TestConformanceDemo runs the MCP conformance suite against the binary in
// demo mode (the suite sends no credentials). Every scenario passes except
// those listed, with a reason, in the expected-failures file, and every
// listed one must still fail, for the listed reason.
func TestConformanceDemo(t *testing.T) {
	dir := ensureClients(t)
	expPath := filepath.Join(repoRoot, expectedFailuresFile)
	expected := loadExpectedFailures(t, expPath)
	cfg := writeClientConfig(t, clientConfig{SessionsPerUser: 500})
	addr := freeAddr(t)
	srv := startServer(t, addr, nil, "--demo", "--insecure-local-user", localUser, "--config", cfg)

	cr := runConformance(t, dir, srv.Base+"/mcp", "--expected-failures", expPath)
	judgeConformance(t, cr, expected, expectedFailuresFile)
}

// judgeConformance applies the expected-failures rules to one run of the
// suite: an unlisted failure, a listed pass, an entry naming no scenario
// and a listed failure for another reason than a missing fixture all fail
// the test. An entry whose reason starts with "known bug:" is a defect of
// backstage-mcp or its libraries written down until fixed; it may fail for
// any reason (and must still fail).
func judgeConformance(t *testing.T, cr conformanceRun, expected []expectedFailure, file string) {
	t.Helper()
	exp := map[string]expectedFailure{}
	for _, e := range expected {
		exp[e.Scenario] = e
	}
	var table strings.Builder
	unexpected, stale, passed, expectedFailed := 0, 0, 0, 0
	for _, name := range cr.Order {
		r := cr.Results[name]
		e, isExpected := exp[name]
		verdict := r.status()
		switch {
		case r.failed() && !isExpected:
			unexpected++
			t.Errorf("conformance scenario %s fails and is not an expected failure:\n  %s", name, strings.Join(r.Errors, "\n  "))
		case !r.failed() && isExpected:
			stale++
			t.Errorf("%s:%d: %s passes now: remove it from the expected failures", file, e.Line, name)
		case r.failed() && isExpected:
			expectedFailed++
			verdict = "expected failure"
			if strings.HasPrefix(e.Reason, "known bug:") {
				verdict = "known bug"
				break
			}
			for _, msg := range r.Errors {
				if !missingFixture.MatchString(msg) {
					t.Errorf("%s is an expected failure (%s) but fails for another reason: %s", name, e.Reason, msg)
				}
			}
		case r.Passed == 0:
			t.Errorf("%s passed without a single successful check", name)
		}
		if !r.failed() {
			passed++
		}
		fmt.Fprintf(&table, "  %-30s %s\n", name, verdict)
	}
	for _, e := range expected {
		if _, ok := cr.Results[e.Scenario]; !ok {
			t.Errorf("%s:%d: %s is not a scenario of the suite's run", file, e.Line, e.Scenario)
		}
	}
	for _, name := range mustPass {
		if r, ok := cr.Results[name]; !ok || r.failed() {
			t.Errorf("%s must run and pass", name)
		}
	}
	// The suite applies the same baseline itself; it must agree.
	if wantCode := map[bool]int{true: 0, false: 1}[unexpected == 0 && stale == 0]; cr.Code != wantCode {
		t.Errorf("the suite exited %d, want %d (unexpected failures %d, stale entries %d)", cr.Code, wantCode, unexpected, stale)
	}
	t.Logf("conformance (%d scenarios: %d pass, %d expected failures, %d unexpected failures, %d stale entries):\n%s",
		len(cr.Order), passed, expectedFailed, unexpected, stale, table.String())
	if t.Failed() {
		t.Logf("suite output:\n%s", tailString(cr.Stdout, 8000))
	}
}

// TestConformanceAuthChallenge shows that the endpoint the suite tests,
// with token verification on (auth.issuers = the real OpenID provider),
// answers the suite's first request, a token-less initialize, with the 401
// challenge that leads to the provider.
func TestConformanceAuthChallenge(t *testing.T) {
	dir := ensureClients(t)
	addr := freeAddr(t)
	base := "http://" + addr
	op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser}})
	cfg := writeClientConfig(t, clientConfig{PublicURL: base, Issuer: op.Issuer})
	srv := startServer(t, addr, nil, "--demo", "--config", cfg)
	hc := &http.Client{Timeout: 10 * time.Second}

	t.Run("plain initialize without a token", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"conformance-test-client","version":"1.0.0"}}}`
		req, err := http.NewRequest(http.MethodPost, srv.Base+"/mcp", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token-less initialize: %d %s, want 401", resp.StatusCode, b)
		}
		if resp.Header.Get("Mcp-Session-Id") != "" || bytes.Contains(b, []byte(`"result"`)) {
			t.Errorf("a 401 must not open a session or answer the request: %s", b)
		}
		wa := resp.Header.Get("WWW-Authenticate")
		prmURL := base + "/.well-known/oauth-protected-resource/mcp"
		if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `resource_metadata="`+prmURL+`"`) {
			t.Fatalf("WWW-Authenticate = %q, want Bearer resource_metadata=%q", wa, prmURL)
		}
		resp, err = hc.Get(prmURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var prm struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil {
			t.Fatal(err)
		}
		if prm.Resource != base+"/mcp" || !slices.Contains(prm.AuthorizationServers, op.Issuer) {
			t.Errorf("PRM = %+v, want resource %s and authorization server %s", prm, base+"/mcp", op.Issuer)
		}
		t.Logf("401 WWW-Authenticate: %s → authorization_servers %v", wa, prm.AuthorizationServers)
	})

	t.Run("the suite's initialize scenario is refused", func(t *testing.T) {
		cr := runConformance(t, dir, srv.Base+"/mcp", "--scenario", "server-initialize")
		r := cr.Results["server-initialize"]
		if cr.Code == 0 || !r.failed() {
			t.Fatalf("the suite's server-initialize passed against an endpoint that requires tokens:\n%s", tailString(cr.Stdout, 3000))
		}
		// The suite's SDK client stops at the 401 and reports the body of
		// the challenge response, {"error":"no token"}.
		refused := false
		for _, msg := range r.Errors {
			if strings.Contains(msg, `{"error":"no token"}`) {
				refused = true
				t.Logf("suite: %s", msg)
			}
		}
		if !refused {
			t.Errorf("the suite's failure is not the token-less refusal: %v", r.Errors)
		}
	})
}
