package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// TestAppendInvalidUTF8: invalid UTF-8 in any text of a record, raw JSON
// arguments included, is replaced before the record is hashed; the line
// is valid JSON and valid UTF-8, the record counts the replaced bytes,
// and the chain verifies.
func TestAppendInvalidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Sink: SinkFile, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const bad = "\xff\xc3("
	rec := &Record{Type: TypeCall, Tool: "t" + bad, Reason: "r" + bad, Agent: Agent{Name: bad, Version: bad},
		Arguments:  json.RawMessage(`{"k` + bad + `":["v` + bad + `",{"x":"\u00e9` + bad + `"}]}`),
		Redactions: map[string]int{"rule" + bad: 2}, Entities: Entities{Refs: []string{"component:default/" + bad}}}
	if err := l.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), &Record{Type: TypeCall, Tool: "clean", Arguments: json.RawMessage(`{"a":"é"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) {
		t.Fatalf("file is not valid UTF-8: %q", b)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	want := []int{18, 0} // 2 bytes in each of 9 texts (3 in the arguments)
	for i, line := range lines {
		if !json.Valid(line) {
			t.Fatalf("line %d is not valid JSON: %q", i+1, line)
		}
		var got Record
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		if got.InvalidUTF8 != want[i] {
			t.Errorf("line %d: invalidUTF8 = %d, want %d: %s", i+1, got.InvalidUTF8, want[i], line)
		}
	}
	var args map[string][]any
	var got Record
	_ = json.Unmarshal(lines[0], &got)
	if err := json.Unmarshal(got.Arguments, &args); err != nil || args["k\uFFFD\uFFFD("] == nil {
		t.Errorf("arguments did not survive: %s (%v)", got.Arguments, err)
	}
	if got.Redactions["rule\uFFFD\uFFFD("] != 2 {
		t.Errorf("redactions = %v", got.Redactions)
	}
	res, err := Verify(path)
	if err != nil || !res.OK || res.Records != 2 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

// TestValidUTF8EveryByte: each byte that cannot start or continue UTF-8
// where it stands, in a key or a value of raw JSON arguments, leaves
// valid JSON that decodes to the same shape.
func TestValidUTF8EveryByte(t *testing.T) {
	for b := 0x80; b <= 0xff; b++ {
		c := string([]byte{byte(b)})
		rec := &Record{Arguments: json.RawMessage(`{"k` + c + `":["\\` + c + `",{"\"` + c + `":"x` + c + c + `"}]}`)}
		n := validUTF8(rec)
		if n != 5 || !json.Valid(rec.Arguments) || !utf8.Valid(rec.Arguments) {
			t.Fatalf("byte %#x: %d replaced, arguments %s", b, n, rec.Arguments)
		}
		var v map[string][]any
		if err := json.Unmarshal(rec.Arguments, &v); err != nil || len(v) != 1 {
			t.Fatalf("byte %#x: %s: %v", b, rec.Arguments, err)
		}
	}
}
