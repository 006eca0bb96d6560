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
