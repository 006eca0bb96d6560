package servertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
)

// EveryTool is one call of every tool that succeeds on the demo catalog
// for a user who may read it all.
var EveryTool = []struct{ Tool, Args string }{
	{"whoami", ""},
	{"catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`},
	{"catalog_search_entities", `{"kind":"component","owner":"team-checkout"}`},
	{"catalog_get_relations", `{"ref":"component:default/checkout-service","depth":2}`},
	{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`},
	{"catalog_list_facets", `{"facet":"spec.type"}`},
	{"catalog_get_api_definition", `{"ref":"api:default/payments-api"}`},
}

// CallEveryTool makes the calls of EveryTool on c and fails on a tool error.
func CallEveryTool(t *testing.T, c *client.Client) {
	t.Helper()
	for _, call := range EveryTool {
		if res := Call(t, c, call.Tool, call.Args); res.IsError {
			t.Errorf("%s: %s", call.Tool, Text(res))
		}
	}
}

// Recorded is one request as it reached Backstage.
type Recorded struct {
	// Authorization is the request's Authorization header.
	Authorization string
	// Dump is the method, URL, every header and the body.
	Dump string
}

// Recorder sits in front of a Backstage (Next) and records every request
// as sent on the wire, to prove which credential reached Backstage and that
// the user's token never did.
type Recorder struct {
	Next http.Handler

	mu   sync.Mutex
	seen []Recorded
}

// ServeHTTP records r and passes it on.
func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	_ = r.Header.Write(&b)
	b.Write(body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, Recorded{Authorization: r.Header.Get("Authorization"), Dump: b.String()})
	rec.mu.Unlock()
	rec.Next.ServeHTTP(w, r)
}

// Requests returns what was recorded so far.
func (rec *Recorder) Requests() []Recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

// SameAnswer reports whether two decoded tool answers are equal, leaving
// out the cursors (each process signs them with a key of its own), so that
// answers from two servers (passthrough and mirror) can be compared.
func SameAnswer(a, b any) bool {
	strip := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			delete(m, "nextCursor")
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	return strip(a) == strip(b)
}
