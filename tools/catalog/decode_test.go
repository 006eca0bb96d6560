package catalog

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// decodeCases are documents on which DecodeObject must agree with
// json.Unmarshal, valid and not: the shapes of catalog entities, and every
// corner where the two could part (escapes, invalid UTF-8, number grammar,
// repeated keys, nesting, trailing data, not an object).
var decodeCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":"b","c":[1,2,{"d":null}],"e":true,"f":false}`,
	`{"a":[]}`, `{"a":{}}`, `{"a":[[],[{}]]}`,
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`,
	`{"s":"plain ascii"}`, `{"s":"caf\u00e9 \"q\" \\ \/ \b\f\n\r\t"}`, `{"s":"é — ✓ 日本"}`,
	"{\"s\":\"bad \xff utf8\"}", "{\"s\":\"half \xe2\x82\"}", `{"s":"\ud83d\ude00 \ud800 lone"}`,
	`{"k\u0065y":"v"}`, "{\"\xffk\":1}", `{"s":"\u2028\u2029"}`,
	`{"n":0}`, `{"n":-0}`, `{"n":-1.5e-3}`, `{"n":1E+10}`, `{"n":123456789012345678901234567890}`,
	`{"n":1e400}`, `{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":-}`, `{"n":1e}`, `{"n":+1}`, `{"n":0x10}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a" 1}`, `{"a":1,}`, `{"a":1 "b":2}`, `{,}`, `{"a":[1,]}`,
	`{"a":[1 2]}`, `{a:1}`, `{"a":1}x`, `{"a":1}{}`, `{"a":1} `, "\n\t{\"a\" :\r 1 }\n",
	"{\"s\":\"ctl \x01\"}", `{"s":"bad \x escape"}`, `{"s":"\u12"}`, `{"s":"unterminated}`, `{"s":"\`,
	`null`, `[]`, `[{}]`, `"s"`, `1`, ``, ` `, `{`, `{"a"`, `{"a":`, `{"a":[`,
	strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat(`}`, 300),
	strings.Repeat(`{"a":[`, 150) + `1` + strings.Repeat(`]}`, 150),
	`{"metadata":{"name":"checkout-service","annotations":{"backstage.io/source-location":"url:https://x.example/y"},"tags":["go","grpc"]},"relations":[{"type":"ownedBy","targetRef":"group:default/team-checkout"}]}`,
}

func sameDecode(t *testing.T, doc []byte) {
	t.Helper()
	got, gotErr := DecodeObject(doc)
	var want map[string]any
	wantErr := json.Unmarshal(doc, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, json.Unmarshal %v", doc, gotErr, wantErr)
	}
	if wantErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("%q: error %q, json.Unmarshal %q", doc, gotErr, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", doc, got, want)
	}
	if (got == nil) != (want == nil) {
		t.Fatalf("%q: nil map %v, json.Unmarshal %v", doc, got == nil, want == nil)
	}
}

func TestDecodeObjectMatchesUnmarshal(t *testing.T) {
	for _, c := range decodeCases {
		sameDecode(t, []byte(c))
	}
}

// TestDecodeObjectCatalogFixtures decodes every JSON fixture of the
// repository (entities of the redaction corpus, golden answers, manifests)
// both ways.
func TestDecodeObjectCatalogFixtures(t *testing.T) {
	n := 0
	for _, root := range []string{"../../testdata", "../testdata"} {
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if e.IsDir() || !strings.HasSuffix(path, ".json") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sameDecode(t, b)
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 10 {
		t.Fatalf("only %d fixtures found", n)
	}
	t.Logf("%d documents", n)
}

// TestDecodeObjectDoesNotAlias checks that the decoded strings do not
// share memory with the caller's bytes: changing raw afterwards must not
// change the map.
func TestDecodeObjectDoesNotAlias(t *testing.T) {
	raw := []byte(`{"name":"abc","list":["xyz"]}`)
	m, err := DecodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		raw[i] = ' '
	}
	if m["name"] != "abc" || m["list"].([]any)[0] != "xyz" {
		t.Fatalf("decoded values changed with the input: %#v", m)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		sameDecode(t, doc)
	})
}

func BenchmarkDecodeObject(b *testing.B) {
	doc := []byte(`{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"checkout-service","namespace":"default","title":"Checkout Service","description":"Orchestrates checkout, from basket to a placed order.","tags":["go","grpc"],"links":[{"url":"https://grafana.acme.example/d/checkout","title":"Dashboard"}],"annotations":{"backstage.io/techdocs-ref":"dir:.","github.com/project-slug":"acme/checkout-service"},"uid":"0c1b7f5e-3c1d-4a0e-9f5e-6b0e8b1c2d3e","etag":"abc123"},"spec":{"type":"service","lifecycle":"production","owner":"team-checkout","system":"checkout","dependsOn":["component:money-lib","resource:orders-db"],"providesApis":["checkout-api"]},"relations":[{"type":"ownedBy","targetRef":"group:default/team-checkout"},{"type":"partOf","targetRef":"system:default/checkout"},{"type":"dependsOn","targetRef":"component:default/money-lib"}]}`)
	b.Run("DecodeObject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeObject(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
