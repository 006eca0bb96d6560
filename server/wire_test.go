package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// wireWork is the server's own work on one tools/call over Streamable
// HTTP, from the request body to the bytes of the answer: body reads,
// decodes of the message, redaction calls (redact.JSON, KeyedValue, Value,
// Text; the tools' redaction of entity fields included) and encodes of the
// answer. mcp-go's own work on the message is fixed and not counted: it
// reads the body once, decodes it (envelope, id, protocol _meta, request)
// and encodes the answer once.
type wireWork struct {
	reads, decodes, encodes int64
	red                     redact.Calls
}

func (w wireWork) redactions() uint64 {
	return w.red.JSON + w.red.KeyedValue + w.red.Value + w.red.Text
}

// wireBudgets are the counts per call measured when this test was
// written; a change that makes a call do more fails here. Lower a budget
// when a change makes calls do less.
var wireBudgets = []struct {
	name, tool, args string
	want             wireWork
}{
	{"get", "catalog_get_entity", `{"ref":"component:default/checkout-service"}`,
		wireWork{reads: 2, decodes: 3, encodes: 1, red: redact.Calls{JSON: 4, KeyedValue: 18, Value: 1, Text: 0}}},
	{"search", "catalog_search_entities", `{"kind":"Component","limit":20}`,
		wireWork{reads: 2, decodes: 3, encodes: 1, red: redact.Calls{JSON: 4, KeyedValue: 29, Value: 21, Text: 0}}},
}

// TestWireWorkPerCall counts, per catalog_get_entity and per
// catalog_search_entities call over Streamable HTTP, the reads, decodes,
// redactions and encodes the server does, and fails when any grows past
// its budget.
func TestWireWorkPerCall(t *testing.T) {
	s := newBenchServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(session, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp, string(b)
	}
	resp, _ := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := resp.Header.Get("Mcp-Session-Id")
	post(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	snap := func() wireWork {
		return wireWork{reads: s.wire.reads.Load(), decodes: s.wire.decodes.Load(), encodes: s.wire.encodes.Load(), red: s.opts.Redactor.Calls()}
	}
	for _, c := range wireBudgets {
		body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + c.tool + `","arguments":` + c.args + `}}`
		post(session, body) // warm caches (user resolution, key judgements)
		before := snap()
		_, answer := post(session, body)
		after := snap()
		if !strings.Contains(answer, `"result"`) || strings.Contains(answer, `"isError":true`) {
			t.Fatalf("%s: %s", c.name, answer)
		}
		got := wireWork{reads: after.reads - before.reads, decodes: after.decodes - before.decodes, encodes: after.encodes - before.encodes,
			red: redact.Calls{JSON: after.red.JSON - before.red.JSON, KeyedValue: after.red.KeyedValue - before.red.KeyedValue,
				Value: after.red.Value - before.red.Value, Text: after.red.Text - before.red.Text}}
		t.Logf("%-6s reads %d, decodes %d, encodes %d, redactions %d (JSON %d, KeyedValue %d, Value %d, Text %d)",
			c.name, got.reads, got.decodes, got.encodes, got.redactions(), got.red.JSON, got.red.KeyedValue, got.red.Value, got.red.Text)
		w := c.want
		if got.reads > w.reads || got.decodes > w.decodes || got.encodes > w.encodes || got.red.JSON > w.red.JSON ||
			got.red.KeyedValue > w.red.KeyedValue || got.red.Value > w.red.Value || got.red.Text > w.red.Text {
			t.Errorf("%s: %+v, budget %+v", c.name, got, w)
		}
	}
}
