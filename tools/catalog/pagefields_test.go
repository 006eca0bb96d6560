package catalog

import (
	"testing"

	"github.com/tidwall/gjson"
)

var pageCases = []string{
	`{"items":[{"a":1},{"b":2}],"totalItems":2,"pageInfo":{"nextCursor":"n1","prevCursor":"p1"}}`,
	`{"items":[],"totalItems":0,"pageInfo":{}}`,
	`{"totalItems":5,"pageInfo":{"nextCursor":"x"},"items":[{}]}`,
	`{"items":[1],"items":[{"x":1}],"totalItems":1,"totalItems":9}`,
	`{"items":{},"totalItems":"7"}`,
	`{"items":[{}],"pageInfo":{"prevCursor":"p"},"pageInfo":{"nextCursor":"n","prevCursor":"q"}}`,
	`{"items":[{}],"pageInfo":[{"nextCursor":"a"}],"pageInfo":{"nextCursor":"b"}}`,
	`{"items":[{}],"pageInfo":"s","pageInfo":{"nextCursor":"b"}}`,
	`{"items":[{}],"pageInfo":{"nextCursor":null}}`,
	`{"items":[{}],"pageInfo":{"nextCursor":12,"prevCursor":{"a":1}}}`,
	`{"it\u0065ms":[{"z":1}],"items":[{}],"totalItems":3}`,
	`{"items":[{}],"page\u0049nfo":{"nextCursor":"e"},"pageInfo":{"nextCursor":"f"}}`,
	`{"items":[{}],"pageInfo":{"next\u0043ursor":"e","nextCursor":"f"}}`,
	`{"a\\":1,"items":[{}]}`,
	`{"items":[{"pageInfo":{"nextCursor":"inner"}}],"pageInfo":{"nextCursor":"outer"}}`,
	`{"items":[{}],"totalItems":1e3,"pageInfo":{"nextCursor":"c","nextCursor":"d"}}`,
	`[{"items":[]}]`, `"items"`, `{}`, ` { "items" : [ { } ] , "totalItems" : 1 } `,
}

func samePage(t *testing.T, body string) {
	t.Helper()
	res := gjson.Parse(body)
	items, p := pageFields(res)
	wi := res.Get("items")
	want := Page{
		TotalItems: int(res.Get("totalItems").Int()),
		NextCursor: res.Get("pageInfo.nextCursor").String(),
		PrevCursor: res.Get("pageInfo.prevCursor").String(),
	}
	if items.Raw != wi.Raw || items.Type != wi.Type || p.TotalItems != want.TotalItems || p.NextCursor != want.NextCursor || p.PrevCursor != want.PrevCursor {
		t.Fatalf("%s:\n got %q %+v\nwant %q %+v", body, items.Raw, *p, wi.Raw, want)
	}
}

// TestPageFieldsMatchGets checks the one-walk reading of a by-query answer
// against the four gjson paths it stands for.
func TestPageFieldsMatchGets(t *testing.T) {
	for _, c := range pageCases {
		if !gjson.Valid(c) {
			t.Fatalf("case is not valid JSON: %s", c)
		}
		samePage(t, c)
	}
}

func FuzzPageFields(f *testing.F) {
	for _, c := range pageCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !gjson.Valid(body) {
			return
		}
		samePage(t, body)
	})
}
