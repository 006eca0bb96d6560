package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// mirrorFreshness is a mirror's state as its /readyz catalog check gives
// it (the info of mirror mode).
type mirrorFreshness struct {
	Ready bool `json:"ready"`
	Stale bool `json:"stale"`
	// AgeSec is the age of the mirror's data: seconds since the start of
	// its last completed sync.
	AgeSec          float64 `json:"age_s"`
	LastSyncSec     float64 `json:"last_sync_s"`
	LastFullSyncSec float64 `json:"last_full_sync_s"`
	MaxStalenessSec float64 `json:"max_staleness_s"`
	LastSyncFailed  bool    `json:"last_sync_failed,omitempty"`
}

// parseMirrorFreshness reads the catalog check of a /readyz body: nil when
// the server is not in mirror mode or has not synced yet.
func parseMirrorFreshness(body []byte) (*mirrorFreshness, error) {
	var b struct {
		Checks map[string]struct {
			Info struct {
				Mode                string   `json:"mode"`
				Ready               bool     `json:"ready"`
				Stale               bool     `json:"stale"`
				AgeSeconds          *float64 `json:"ageSeconds"`
				LastSyncSeconds     float64  `json:"lastSyncSeconds"`
				LastFullSyncSeconds float64  `json:"lastFullSyncSeconds"`
				MaxStalenessSeconds float64  `json:"maxStalenessSeconds"`
				LastSyncFailed      bool     `json:"lastSyncFailed"`
			} `json:"info"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("benchcmd: readyz: %w", err)
	}
	in := b.Checks["catalog"].Info
	if in.Mode != "mirror" || in.AgeSeconds == nil {
		return nil, nil
	}
	return &mirrorFreshness{Ready: in.Ready, Stale: in.Stale, AgeSec: *in.AgeSeconds, LastSyncSec: in.LastSyncSeconds,
		LastFullSyncSec: in.LastFullSyncSeconds, MaxStalenessSec: in.MaxStalenessSeconds, LastSyncFailed: in.LastSyncFailed}, nil
}

// readyzFreshness asks the backstage-mcp at base for /readyz and returns
// its mirror's freshness (nil when not a mirror).
func readyzFreshness(ctx context.Context, base string) (*mirrorFreshness, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return nil, fmt.Errorf("benchcmd: readyz: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("benchcmd: readyz: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("benchcmd: readyz: %w", err)
	}
	return parseMirrorFreshness(body)
}

// String describes f for the report.
func (f *mirrorFreshness) String() string {
	state := "fresh"
	if f.Stale {
		state = "**stale**"
	}
	if !f.Ready {
		state += ", **not ready**"
	}
	s := fmt.Sprintf("%s (data %.1f s old, maxStaleness %.0f s; last sync %.1f s, last full sync %.1f s", state, f.AgeSec,
		f.MaxStalenessSec, f.LastSyncSec, f.LastFullSyncSec)
	if f.LastSyncFailed {
		s += "; the last sync failed"
	}
	return s + ")"
}
