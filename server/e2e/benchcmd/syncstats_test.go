package main

import (
	"strings"
	"testing"
)

func TestParseSyncStats(t *testing.T) {
	in := `# HELP backstage_mcp_catalog_mirror_sync_duration_seconds Catalog mirror syncs by kind (full, delta) and outcome (ok, error).
# TYPE backstage_mcp_catalog_mirror_sync_duration_seconds histogram
backstage_mcp_catalog_mirror_sync_duration_seconds_bucket{kind="delta",outcome="ok",le="0.01"} 0
backstage_mcp_catalog_mirror_sync_duration_seconds_sum{kind="delta",outcome="error"} 9
backstage_mcp_catalog_mirror_sync_duration_seconds_count{kind="delta",outcome="error"} 3
backstage_mcp_catalog_mirror_sync_duration_seconds_sum{kind="delta",outcome="ok"} 12.5
backstage_mcp_catalog_mirror_sync_duration_seconds_count{kind="delta",outcome="ok"} 5
backstage_mcp_catalog_mirror_sync_duration_seconds_sum{kind="full",outcome="ok"} 2.1
backstage_mcp_catalog_mirror_sync_duration_seconds_count{kind="full",outcome="ok"} 1
`
	st, err := parseSyncStats(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 5 || st.SumSec != 12.5 {
		t.Fatalf("got %+v, want 5 delta syncs taking 12.5 s", st)
	}
}

// TestMirrorFreshness: the bench reads the mirror's freshness from the
// /readyz body the server writes, and the report's target says whether the
// mirror was fresh when first ready.
func TestMirrorFreshness(t *testing.T) {
	ready := `{"status":"ok","checks":{"catalog":{"status":"ok","detail":"mirror: 100000 entities, data 71s old (last sync took 1m11s)","ms":0.01,
"info":{"mode":"mirror","entities":100000,"stale":false,"ready":true,"maxStalenessSeconds":300,"lastSyncFailed":false,
"syncedAt":"2026-12-02T09:00:00Z","staleAt":"2026-12-02T09:05:00Z","ageSeconds":71.2,"lastSyncSeconds":71.1,"lastFullSyncSeconds":71.1}}}}`
	f, err := parseMirrorFreshness([]byte(ready))
	if err != nil {
		t.Fatal(err)
	}
	want := mirrorFreshness{Ready: true, AgeSec: 71.2, LastSyncSec: 71.1, LastFullSyncSec: 71.1, MaxStalenessSec: 300}
	if f == nil || *f != want {
		t.Fatalf("got %+v, want %+v", f, want)
	}
	for _, body := range []string{
		`{"status":"ok","checks":{"catalog":{"status":"ok","info":{"mode":"passthrough"}}}}`,
		`{"status":"unavailable","checks":{"catalog":{"status":"fail","info":{"mode":"mirror","ready":false,"stale":true}}}}`,
	} {
		if f, err := parseMirrorFreshness([]byte(body)); err != nil || f != nil {
			t.Errorf("%s: %+v %v, want nothing", body, f, err)
		}
	}

	stale := want
	stale.Stale, stale.Ready = true, false
	b := &bench{res: results{PeakRSS: []peakRSS{
		{Scale: 10_000, Path: "ours"},
		{Scale: 10_000, Path: "ours-mirror", ReadyMs: 2500, AtReady: &want, AtEnd: &want},
		{Scale: 100_000, Path: "ours-mirror", ReadyMs: 72_000, AtReady: &stale},
		{Scale: 30_000, Path: "ours-mirror"},
	}}}
	h := b.freshHeadlines()
	if len(h) != 3 || !h[0].Met || h[1].Met || h[2].Met ||
		!strings.Contains(h[0].Measured, "fresh (data 71.2 s old, maxStaleness 300 s") || !strings.Contains(h[1].Measured, "**stale**") {
		t.Errorf("headlines %+v", h)
	}
}
