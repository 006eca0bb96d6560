package tools

import (
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxToolListBytes bounds the whole tools/list JSON: a client sends it to
// the model once per conversation, output schemas and annotations
// included, and the question suite's token figures (README.md) count it.
// About 23,700 bytes before the schemas and descriptions were compacted;
// 15,212 after.
const maxToolListBytes = 16 << 10

// TestToolListBudget: tools/list stays within its budget; -v logs where
// its bytes go, per tool and part.
func TestToolListBudget(t *testing.T) {
	var list mcp.ListToolsResult
	parts := map[string]int{}
	for _, tl := range All(&Deps{Cursors: NewCursorCodec(nil)}) {
		list.Tools = append(list.Tools, tl.Tool)
		b, err := json.Marshal(tl.Tool)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-28s %5d bytes: description %4d, inputSchema %4d, outputSchema %4d, annotations %3d",
			tl.Tool.Name, len(b), len(m["description"]), len(m["inputSchema"]), len(m["outputSchema"]), len(m["annotations"]))
		for k, v := range m {
			parts[k] += len(v)
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tools/list: %d bytes (~%d tokens); by part: %v", len(b), len(b)/4, parts)
	if len(b) > maxToolListBytes {
		t.Errorf("tools/list is %d bytes, budget %d: every byte is read by the model with each conversation", len(b), maxToolListBytes)
	}
}
