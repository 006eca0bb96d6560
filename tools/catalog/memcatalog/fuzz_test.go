package memcatalog

import (
	"errors"
	"net/url"
	"testing"
)

// FuzzFilterParser feeds arbitrary filter strings to the parser and the
// evaluator: they must never panic, and a parsed filter must evaluate.
func FuzzFilterParser(f *testing.F) {
	for _, s := range []string{
		"kind=component,spec.type=service", "kind=component,kind=api", "metadata.tags.java",
		"relations.ownedBy=group:default/team-a", " kind = User ", ",", "=x", "a=b=c", "a,,b", "",
		"metadata.annotations.backstage.io/techdocs-ref=dir:.", "\x00=\xff", "k=\u2028",
	} {
		f.Add(s, "metadata.name,asc")
	}
	c, err := New(fixture())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, filter, order string) {
		pred, err := parseFilterParams([]string{filter, filter + ",x"})
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if pred != nil {
			got := c.idx.eval(pred)
			if got.count() > c.Len() {
				t.Fatalf("count %d > %d", got.count(), c.Len())
			}
		}
		// The whole request path must not panic either.
		q := url.Values{"filter": {filter}, "orderField": {order}, "fullTextFilterTerm": {filter}, "fields": {filter}}
		_ = parseQuery(q.Encode()).check(specsByQuery)
		if cur, err := decodeCursor(filter); err == nil {
			c.run(&queryRequest{cur: cur, isCursor: true, limit: 3})
		}
	})
}
