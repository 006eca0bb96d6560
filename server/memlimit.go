package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// The container's memory limit as the Go runtime's soft limit. A Go
// process paces its collections on GOGC alone unless told a limit: with a
// mirror of 100,000 entities (about 300 MB live) the heap may grow to
// twice that between two collections under load, past a container limit
// the process never heard of (the kernel then kills it). In a container
// with a memory limit, and unless GOMEMLIMIT says otherwise, the server
// sets the runtime's soft limit to memoryLimitPercent of it, so that the
// collector runs more often as the heap nears it instead.

// memoryLimitPercent is the share of the container's limit given to the
// Go runtime; the rest is for what the runtime does not count (the
// binary, thread stacks outside the heap, the kernel's page cache charged
// to the container).
const memoryLimitPercent = 90

// cgroup files holding the container's memory limit: cgroup v2, then v1.
const (
	cgroupV2MemoryMax = "/sys/fs/cgroup/memory.max"
	cgroupV1Limit     = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
)

// cgroupV1Unlimited: v1 reports "no limit" as a number near 2^63.
const cgroupV1Unlimited = int64(1) << 60

// ContainerMemoryLimit returns the soft memory limit the server should set
// (memoryLimitPercent of the container's limit) and why; 0 when it should
// set none: GOMEMLIMIT is set (the operator's choice stands), or no
// container limit is found (not in a cgroup with one, or unreadable).
// readFile reads a file (os.ReadFile); getenv reads the environment.
func ContainerMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT is set"
	}
	limit, src, err := cgroupMemoryLimit(readFile)
	if err != nil || limit <= 0 {
		return 0, "no container memory limit"
	}
	return limit / 100 * memoryLimitPercent, fmt.Sprintf("%d%% of the container's limit of %d bytes (%s)", memoryLimitPercent, limit, src)
}

// cgroupMemoryLimit reads the container's memory limit in bytes (0: none).
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, string, error) {
	b, err := readFile(cgroupV2MemoryMax)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, cgroupV2MemoryMax, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("server: %s: %w", cgroupV2MemoryMax, err)
		}
		return n, cgroupV2MemoryMax, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, "", fmt.Errorf("server: %w", err)
	}
	b, err = readFile(cgroupV1Limit)
	if err != nil {
		return 0, "", fmt.Errorf("server: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("server: %s: %w", cgroupV1Limit, err)
	}
	if n >= cgroupV1Unlimited {
		return 0, cgroupV1Limit, nil
	}
	return n, cgroupV1Limit, nil
}

// ApplyContainerMemoryLimit sets the runtime's soft memory limit from the
// container's (ContainerMemoryLimit) and logs what it did. It returns the
// limit set, 0 for none.
func ApplyContainerMemoryLimit(log *slog.Logger, getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	limit, why := ContainerMemoryLimit(getenv, readFile)
	if limit <= 0 {
		log.Debug("Go memory limit not set by the server", "why", why)
		return 0
	}
	debug.SetMemoryLimit(limit)
	log.Info("Go memory limit set from the container's", "limitBytes", limit, "why", why)
	return limit
}
