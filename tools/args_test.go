package tools

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeArgs(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		wantErr string
		check   func(t *testing.T, a args)
	}{
		{name: "empty", raw: ``},
		{name: "null", raw: `null`},
		{name: "all types", raw: `{"kind":"Component","limit":5,"tags":["a","b"]}`, check: func(t *testing.T, a args) {
			if a.str("kind") != "Component" || a.num("limit", 0) != 5 || len(a.list("tags")) != 2 {
				t.Fatalf("args = %v", a)
			}
		}},
		{name: "null value is absent", raw: `{"kind":null}`, check: func(t *testing.T, a args) {
			if a.has("kind") {
				t.Fatal("null kept")
			}
		}},
		{name: "unknown key", raw: `{"knd":"x"}`, wantErr: `unknown argument "knd"; expected one of`},
		{name: "case differing key", raw: `{"Kind":"x"}`, wantErr: `unknown argument "Kind"`},
		{name: "duplicate key", raw: `{"kind":"component","kind":"user"}`, wantErr: `argument "kind" appears more than once`},
		{name: "wrong type", raw: `{"kind":5}`, wantErr: `argument "kind" must be a string`},
		{name: "int out of range", raw: `{"limit":101}`, wantErr: `argument "limit" must be an integer from 1 to 100`},
		{name: "int fraction", raw: `{"limit":1.5}`, wantErr: `argument "limit" must be an integer`},
		{name: "int as string", raw: `{"limit":"5"}`, wantErr: `argument "limit" must be an integer`},
		{name: "enum", raw: `{"detail":"everything"}`, wantErr: `argument "detail" must be one of: summary, full`},
		{name: "too many items", raw: `{"tags":["1","2","3","4","5","6","7","8","9","10","11"]}`, wantErr: `at most 10 items`},
		{name: "array of non-strings", raw: `{"tags":[1]}`, wantErr: `must be an array of strings`},
		{name: "too long", raw: `{"kind":"` + strings.Repeat("k", 300) + `"}`, wantErr: `longer than 256 bytes`},
		{name: "not an object", raw: `["kind"]`, wantErr: `must be a JSON object`},
		{name: "trailing data", raw: `{"kind":"a"} {"kind":"b"}`, wantErr: `single JSON object`},
		{name: "broken json", raw: `{"kind":`, wantErr: `not valid JSON`},
	}
	params := []param{
		{name: "kind", typ: tString},
		{name: "limit", typ: tInt, min: 1, max: 100},
		{name: "tags", typ: tStrings, max: 10},
		{name: "detail", typ: tString, enum: []string{"summary", "full"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeArgs(json.RawMessage(tc.raw), params)
			if tc.wantErr != "" {
				var ae *argError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{`{"kind":"x"}`, `{"limit":3,"tags":["a"]}`, `{"Kind":1}`, `[]`, `{"a":{"b":[1,2]}}`, `{"kind":"a","kind":"b"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := decodeArgs(json.RawMessage(raw), searchParams)
		if err != nil {
			return
		}
		for k := range a {
			found := false
			for _, p := range searchParams {
				found = found || p.name == k
			}
			if !found {
				t.Fatalf("accepted undeclared argument %q", k)
			}
		}
	})
}

func TestCursorCodec(t *testing.T) {
	c := NewCursorCodec(nil)
	w := c.Wrap("alice", "backstage-cursor")
	if got, err := c.Unwrap("alice", w); err != nil || got != "backstage-cursor" {
		t.Fatalf("Unwrap = %q, %v", got, err)
	}
	if _, err := c.Unwrap("bob", w); err == nil {
		t.Fatal("cursor of another caller accepted")
	}
	first := "A"
	if w[0] == 'A' {
		first = "B"
	}
	forged := first + w[1:]
	if _, err := c.Unwrap("alice", forged); err == nil {
		t.Fatal("forged cursor accepted")
	}
	if _, err := NewCursorCodec(nil).Unwrap("alice", w); err == nil {
		t.Fatal("cursor from another key accepted")
	}
	if c.Wrap("alice", "") != "" {
		t.Fatal("empty cursor should stay empty")
	}
}
