package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// syncStats are a mirror's delta syncs while the bench ran, read from its
// /metrics: they run every syncInterval during the measurements, so their
// cost falls on the same machine as every path's calls.
type syncStats struct {
	Count  int     `json:"count"`
	SumSec float64 `json:"sum_s"`
}

// mirrorSyncs reads the count and total duration of the successful delta
// syncs of the backstage-mcp at base.
func mirrorSyncs(ctx context.Context, base string) (syncStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return syncStats{}, fmt.Errorf("benchcmd: metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return syncStats{}, fmt.Errorf("benchcmd: metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return syncStats{}, fmt.Errorf("benchcmd: metrics: HTTP %d", resp.StatusCode)
	}
	return parseSyncStats(io.LimitReader(resp.Body, 8<<20))
}

// parseSyncStats picks the delta, ok series of the mirror's sync duration
// histogram out of a Prometheus text exposition.
func parseSyncStats(r io.Reader) (syncStats, error) {
	const name = "backstage_mcp_catalog_mirror_sync_duration_seconds"
	var st syncStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, `kind="delta"`) || !strings.Contains(line, `outcome="ok"`) {
			continue
		}
		metric, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return st, fmt.Errorf("benchcmd: metrics: %q: %w", line, err)
		}
		switch {
		case strings.HasPrefix(metric, name+"_sum{"):
			st.SumSec = v
		case strings.HasPrefix(metric, name+"_count{"):
			st.Count = int(v)
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("benchcmd: metrics: %w", err)
	}
	return st, nil
}
