package tools

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// jsonStrings are strings on which a hand-written JSON encoder can part
// from encoding/json: quotes, backslashes, every kind of control
// character, HTML characters, invalid UTF-8, U+2028/2029, multi-byte runes.
var jsonStrings = []string{
	"", "plain", "component:default/checkout-service", `q"uote`, `back\slash`, "a\bb\fc\nd\re\tf",
	"\x00\x01\x1f\x7f", "<script>&amp;</script>", "caf\u00e9 — ✓ 日本 😀", "\u2028\u2029", "bad \xff\xfe utf8",
	"half \xe2\x82", "\xed\xa0\x80 surrogate", "tab\tend", "[REDACTED:github-pat]",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	return jsonStrings[r.IntN(len(jsonStrings))]
}

func randSummary(r *rand.Rand) Summary {
	s := Summary{Ref: randString(r), Title: randString(r), Description: randString(r), Type: randString(r),
		Lifecycle: randString(r), Owner: randString(r), System: randString(r), Domain: randString(r)}
	switch r.IntN(3) {
	case 0:
		s.Annotations = map[string]string{}
	case 1:
		s.Annotations = map[string]string{}
		for range r.IntN(4) + 1 {
			s.Annotations[randString(r)] = randString(r)
		}
	}
	switch r.IntN(3) {
	case 0:
		s.Tags = []string{}
	case 1:
		for range r.IntN(4) + 1 {
			s.Tags = append(s.Tags, randString(r))
		}
	}
	switch r.IntN(3) {
	case 0:
		s.Links = []Link{}
	case 1:
		for range r.IntN(3) + 1 {
			s.Links = append(s.Links, Link{Title: randString(r), URL: randString(r)})
		}
	}
	switch r.IntN(3) {
	case 0:
		s.Relations = []RelatedRefs{}
	case 1:
		for range r.IntN(5) + 1 {
			rr := RelatedRefs{Type: randString(r), Total: r.IntN(2000) - 1000}
			for range r.IntN(3) {
				rr.Refs = append(rr.Refs, randString(r))
			}
			s.Relations = append(s.Relations, rr)
		}
	}
	return s
}

func sameAsMarshal(t *testing.T, v interface {
	AppendJSON([]byte) ([]byte, bool)
}) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := v.AppendJSON([]byte("prefix"))
	if !ok {
		if string(got) != "prefix" {
			t.Fatalf("declined but appended %q", got)
		}
		return
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("AppendJSON %s\n json.Marshal %s", got[len("prefix"):], want)
	}
}

// TestAppendJSONMatchesMarshal holds the self-encoding answers to
// encoding/json's bytes.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		sameAsMarshal(t, randSummary(r))
	}
	n := 7
	for i := range 300 {
		res := SearchEntitiesResult{Items: []any{}}
		for range r.IntN(5) {
			res.Items = append(res.Items, randSummary(r))
		}
		if i%3 == 0 {
			res.NextCursor = randString(r)
		}
		if i%4 == 0 {
			res.TotalItems = &n
		}
		if i%5 == 0 {
			res.Note = randString(r)
		}
		sameAsMarshal(t, res)
	}
	// Declined: nil items, and items that are not summaries.
	for _, res := range []SearchEntitiesResult{{}, {Items: []any{Summary{Ref: "a"}, map[string]any{"kind": "Component"}}}} {
		if _, ok := res.AppendJSON(nil); ok {
			t.Errorf("%+v: not declined", res)
		}
		sameAsMarshal(t, res)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: %s, json.Marshal %s", s, got, want)
		}
	})
}
