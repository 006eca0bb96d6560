package mirror

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkFullSyncRSS: the resident memory of a process that runs a
// mirror, measured in a process of its own (this test binary run again as
// TestRSSHelper) so that nothing else this binary holds counts: the peak
// RSS (VmHWM) after the first full sync and after a second one (the old
// copy serves while the new one is built), and the CPU time of the first.
// The pages come from a file, as in BenchmarkFullSyncMemory. The garbage
// collector's settings (GOGC, GOMEMLIMIT) pass to the helper, and so does
// MIRROR_HEAP_GROWTH, the mirror's HeapGrowth (default: the mirror's
// default; -1: the runtime's pacing only). gc-cpu-s is the CPU time the
// garbage collector spent in the first sync (runtime/metrics), part of
// cpu-s-first.
//
//	go test -run '^$' -bench 'FullSyncRSS/10k' -benchtime 1x ./tools/catalog/mirror/
//	go test -run '^$' -bench 'FullSyncRSS/100k' -benchtime 1x -timeout 30m ./tools/catalog/mirror/
//	MIRROR_HEAP_GROWTH=-1 go test -run '^$' -bench 'FullSyncRSS/100k' -benchtime 1x -timeout 30m ./tools/catalog/mirror/
func BenchmarkFullSyncRSS(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			up := newPageUpstream(b, rawItems(b, n, 0))
			upstreams.Delete(fmt.Sprint("raw/", n, "/0"))
			upstreams.Delete(fmt.Sprint(n, "/0"))
			endsFile := up.f.Name() + ".ends"
			var buf []byte
			for _, e := range up.ends {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(e)) //nolint:gosec // offsets are positive
			}
			if err := os.WriteFile(endsFile, buf, 0o600); err != nil {
				b.Fatal(err)
			}
			var res rssResult
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run", "^TestRSSHelper$", "-test.timeout", "30m")
				cmd.Env = append(os.Environ(), "MIRROR_RSS_PAGES="+up.f.Name())
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("helper: %v\n%s", err, out)
				}
				line := out[:max(0, strings.IndexByte(string(out), '\n'))]
				if err := json.Unmarshal(line, &res); err != nil {
					b.Fatalf("helper said %q: %v", out, err)
				}
			}
			b.ReportMetric(res.FirstKiB/1024, "rssMiB-first")
			b.ReportMetric(res.SecondKiB/1024, "rssMiB-second")
			b.ReportMetric(res.CPU, "cpu-s-first")
			b.ReportMetric(res.GCCPU, "gc-cpu-s-first")
			b.ReportMetric(res.Seconds, "s-first")
		})
	}
}

type rssResult struct {
	FirstKiB, SecondKiB float64 // VmHWM after the first and the second full sync
	CPU                 float64 // CPU seconds of the first
	GCCPU               float64 // of which the garbage collector's
	Seconds             float64 // the first's duration
}

// TestRSSHelper is the process BenchmarkFullSyncRSS measures; run by any
// other way (MIRROR_RSS_PAGES unset) it has nothing to measure and passes.
func TestRSSHelper(t *testing.T) {
	pages := os.Getenv("MIRROR_RSS_PAGES")
	if pages == "" {
		return
	}
	f, err := os.Open(pages)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := os.ReadFile(pages + ".ends")
	if err != nil {
		t.Fatal(err)
	}
	up := &pageUpstream{f: f, ends: make([]int64, len(raw)/8)}
	for i := range up.ends {
		up.ends[i] = int64(binary.LittleEndian.Uint64(raw[i*8:])) //nolint:gosec // written from int64 offsets
	}
	cfg := Config{Upstream: up, SyncInterval: time.Hour, MaxStaleness: 2 * time.Hour}
	cfg.HeapGrowth = heapGrowthFromEnv(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var res rssResult
	gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(gc)
	gc0 := gc[0].Value.Float64()
	c0, t0 := cpuTime(), time.Now()
	if _, err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.CPU, res.Seconds = (cpuTime() - c0).Seconds(), time.Since(t0).Seconds()
	metrics.Read(gc)
	res.GCCPU = gc[0].Value.Float64() - gc0
	res.FirstKiB = vmHWM(t)
	if _, err := m.FullSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.SecondKiB = vmHWM(t)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
}

// vmHWM is the process's peak resident set size so far, in KiB.
func vmHWM(t *testing.T) float64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
