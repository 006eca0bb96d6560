//go:build probe

package memcatalog

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
)

func TestProbeServe(t *testing.T) {
	b, err := os.ReadFile("/tmp/bsprobe/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	var ents []map[string]any
	if err := json.Unmarshal(b, &ents); err != nil {
		t.Fatal(err)
	}
	c, err := New(ents, WithToken("probe-token-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(http.ListenAndServe("127.0.0.1:7800", c.Handler()))
}
