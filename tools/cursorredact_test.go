package tools

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// TestCursorsSurviveRedaction: every answer passes egress redaction, the
// cursor in the text block ("more with cursor=…") and in structured content
// alike. A cursor is random bytes under encryption, so its encoding must
// never let a token prefix sit at a word boundary inside it: a base64url
// cursor once held "-fo1_…" and came out partly redacted (paging broke, and
// the non-interference test saw answers differ). The encoding has no
// character that makes a word boundary, and sample cursors pass the
// redactor unchanged in text and in JSON.
func TestCursorsSurviveRedaction(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCursorCodec(nil)
	// A Backstage cursor as it hands them out: base64 of its JSON.
	inner := base64.StdEncoding.EncodeToString([]byte(`{"firstSortFieldValues":["component:default/svc-9"],"isPrevious":false,"query":{"filter":{"kind":["component"]}},"totalItems":130}`))
	n := 20000
	if testing.Short() {
		n = 4000
	}
	for i := range n {
		cur := c.Wrap("user:default/jane\x00user:default/jane\x00agent", inner)
		text := "20 entities; more with cursor=" + cur + "\n"
		if got, rep := r.Text(text); got != text {
			t.Fatalf("cursor %d was redacted in text (%v):\n%s\n%s", i, rep, text, got)
		}
		doc, _ := json.Marshal(map[string]string{"nextCursor": cur, "cursor": cur})
		if got, _, err := r.JSON(doc); err != nil || string(got) != string(doc) {
			t.Fatalf("cursor %d was redacted in JSON (%v):\n%s\n%s", i, err, doc, got)
		}
		if strings.ContainsAny(cur, "-_+/=") {
			t.Fatalf("cursor %q has a character that makes a word boundary", cur)
		}
	}
}

// TestCursorKeyRotation: a cursor sealed under the previous key still
// opens after rotation; one sealed under a key no longer listed does not;
// new cursors are sealed with the current key only.
func TestCursorKeyRotation(t *testing.T) {
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	before := NewCursorCodec(oldKey)
	during := NewCursorCodec(newKey, oldKey)
	after := NewCursorCodec(newKey)
	c := before.Wrap("caller", "backstage-cursor")
	if got, err := during.Unwrap("caller", c); err != nil || got != "backstage-cursor" {
		t.Fatalf("old cursor during rotation = %q, %v", got, err)
	}
	if _, err := during.Unwrap("someone else", c); err == nil {
		t.Fatal("an old cursor opened for another caller")
	}
	if _, err := after.Unwrap("caller", c); err == nil {
		t.Fatal("a cursor under a retired key still opens")
	}
	fresh := during.Wrap("caller", "next")
	if _, err := before.Unwrap("caller", fresh); err == nil {
		t.Fatal("a new cursor was sealed with the previous key")
	}
	if got, err := after.Unwrap("caller", fresh); err != nil || got != "next" {
		t.Fatalf("new cursor after rotation = %q, %v", got, err)
	}
}
