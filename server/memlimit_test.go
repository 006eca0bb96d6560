package server

import (
	"io/fs"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

// TestContainerMemoryLimit: 90% of the container's limit, read from
// cgroup v2's memory.max or else v1's limit_in_bytes; none when
// GOMEMLIMIT is set, when the limit is "max" (or v1's near-2^63), when
// no cgroup file exists or one holds garbage.
func TestContainerMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name  string
		env   func(string) string
		files map[string]string
		want  int64
		why   string
	}{
		{"v2", noEnv, map[string]string{cgroupV2MemoryMax: "536870912\n"}, 536870912 / 100 * 90, "90% of the container's limit of 536870912 bytes (/sys/fs/cgroup/memory.max)"},
		{"v2 unlimited", noEnv, map[string]string{cgroupV2MemoryMax: "max\n", cgroupV1Limit: "1000000"}, 0, "no container memory limit"},
		{"v1", noEnv, map[string]string{cgroupV1Limit: "268435456\n"}, 268435456 / 100 * 90, "(/sys/fs/cgroup/memory/memory.limit_in_bytes)"},
		{"v1 unlimited", noEnv, map[string]string{cgroupV1Limit: "9223372036854771712\n"}, 0, "no container memory limit"},
		{"no cgroup", noEnv, nil, 0, "no container memory limit"},
		{"garbage", noEnv, map[string]string{cgroupV2MemoryMax: "lots"}, 0, "no container memory limit"},
		{"GOMEMLIMIT set", func(k string) string {
			if k == "GOMEMLIMIT" {
				return "300MiB"
			}
			return ""
		}, map[string]string{cgroupV2MemoryMax: "536870912"}, 0, "GOMEMLIMIT is set"},
	} {
		got, why := ContainerMemoryLimit(tc.env, files(tc.files))
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %d (%s), want %d (%s)", tc.name, got, why, tc.want, tc.why)
		}
	}
}

// TestApplyContainerMemoryLimit: the limit found becomes the runtime's
// soft limit; with none, the runtime's is left as it was.
func TestApplyContainerMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	log := slog.New(slog.DiscardHandler)
	const tib = int64(1) << 40
	got := ApplyContainerMemoryLimit(log, func(string) string { return "" }, func(p string) ([]byte, error) {
		if p == cgroupV2MemoryMax {
			return []byte("1099511627776"), nil
		}
		return nil, fs.ErrNotExist
	})
	if want := tib / 100 * 90; got != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("limit %d, runtime's %d, want %d", got, debug.SetMemoryLimit(-1), want)
	}
	debug.SetMemoryLimit(before)
	if got := ApplyContainerMemoryLimit(log, func(string) string { return "" }, func(string) ([]byte, error) { return nil, fs.ErrNotExist }); got != 0 || debug.SetMemoryLimit(-1) != before {
		t.Fatalf("no container limit: set %d, runtime's %d", got, debug.SetMemoryLimit(-1))
	}
}
