package mirror

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// TestPacerBound: the pacer collects once the heap exceeds (1 + growth)
// times the live heap the finished copy needs plus the slack; before a
// collection has seen the copy (or without Backstage's count) that is the
// live heap at the last collection, after it the projection from the
// bytes each entity has cost so far.
func TestPacerBound(t *testing.T) {
	const mib = 1 << 20
	p := &heapPacer{growth: 0.05, base: 10 * mib, cycles: 7}
	// No count, no collection since the start: the live heap is the need.
	if p.over(10*mib*105/100+paceSlack-1, 10*mib, 7) {
		t.Error("collected within the bound")
	}
	if !p.over(10*mib*105/100+paceSlack+mib, 10*mib, 7) {
		t.Error("no collection beyond the bound")
	}
	// 1,000 of 10,000 entities indexed, a collection since the start saw
	// 20 MiB live: 10 KiB an entity, so the copy will need 10 + 100 MiB.
	p.expect(10_000)
	p.added = 1000
	if p.over(110*mib, 20*mib, 8) {
		t.Error("collected below the projected need")
	}
	if !p.over(116*mib+paceSlack, 20*mib, 8) {
		t.Error("no collection beyond (1+growth) times the projected need")
	}
	// The same heap before any collection has seen the copy: no projection.
	if !p.over(110*mib, 20*mib, 7) {
		t.Error("projected from a collection that saw none of the copy")
	}
	// More entities than announced: the projection follows what was added.
	p.added = 12_000
	if p.over(130*mib, 130*mib, 8) {
		t.Error("the projection ignored entities beyond the count")
	}
	// Negative growth: no pacer at all.
	if newHeapPacer(-1) != nil {
		t.Error("a pacer with negative growth")
	}
	var none *heapPacer
	none.expect(5)
	none.indexed(5) // a nil pacer does nothing
}

// TestFullSyncPacesItsHeap: a full sync of a catalog whose garbage
// outgrows the bound forces collections (Report.Collections), and serves
// the same answers as one paced by the runtime alone (HeapGrowth < 0),
// which forces none.
func TestFullSyncPacesItsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a catalog of 3,000 entities twice")
	}
	src, err := memcatalog.New(genEntities(3000, 0), memcatalog.WithoutRecording())
	if err != nil {
		t.Fatal(err)
	}
	all, err := src.Query(context.Background(), catalog.Query{Limit: 3000})
	if err != nil {
		t.Fatal(err)
	}
	up := newPageUpstream(t, all.Items)
	sync := func(growth float64) (*Mirror, Report) {
		m, err := New(Config{Upstream: up, SyncInterval: time.Hour, MaxStaleness: 2 * time.Hour, HeapGrowth: growth})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := m.Sync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return m, rep
	}
	paced, rep := sync(0)
	if rep.Collections == 0 || rep.Entities != 3000 {
		t.Fatalf("paced sync: %+v", rep)
	}
	free, rep := sync(-1)
	if rep.Collections != 0 {
		t.Fatalf("unpaced sync forced %d collections", rep.Collections)
	}
	a, err := paced.Query(context.Background(), catalog.Query{Limit: 3000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := free.Query(context.Background(), catalog.Query{Limit: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the paced and unpaced copies differ")
	}
}
