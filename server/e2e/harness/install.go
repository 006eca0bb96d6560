package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// EnsureInstalled runs `npm ci` in dir (the backend directory) unless its
// node_modules is already installed from the current package-lock.json.
// An exclusive flock on dir/.install.lock serialises concurrent callers, such
// as several test packages run in parallel by `go test ./...`; the ones that
// wait find the work done. npm's output goes to log.
func EnsureInstalled(ctx context.Context, dir string, log io.Writer) error {
	lockPath := filepath.Join(dir, ".install.lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("harness: open install lock: %w", err)
	}
	defer lock.Close()
	if err := flock(ctx, lock); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	ok, err := installed(dir)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	fmt.Fprintf(log, "harness: running npm ci in %s\n", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = npmEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: npm ci: %w", err)
	}
	fmt.Fprintf(log, "harness: npm ci took %s\n", time.Since(start).Round(time.Second))
	ok, err = installed(dir)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("harness: npm ci finished but node_modules is incomplete (is better-sqlite3 built?)")
	}
	return nil
}

// installed reports whether node_modules matches package-lock.json: npm's
// hidden lockfile must be at least as new as the committed one, and
// better-sqlite3's native module must have been built.
func installed(dir string) (bool, error) {
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, fmt.Errorf("harness: %w", err)
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("harness: %w", err)
	}
	if hidden.ModTime().Before(lockInfo.ModTime()) {
		return false, nil
	}
	native := filepath.Join(dir, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node")
	if _, err := os.Stat(native); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("harness: %w", err)
	}
	return true, nil
}

// flock takes an exclusive lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("harness: lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: waiting for install lock: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// npmEnv points node-gyp at the system's Node headers when they are installed
// and nothing else says where they are: better-sqlite3 is compiled from
// source here, and node-gyp would otherwise try to download the headers.
func npmEnv(env []string) []string {
	for _, kv := range env {
		if len(kv) > len("npm_config_nodedir=") && strings.EqualFold(kv[:len("npm_config_nodedir=")], "npm_config_nodedir=") {
			return env
		}
	}
	if _, err := os.Stat("/usr/include/node/node_version.h"); err == nil {
		return append(env, "npm_config_nodedir=/usr")
	}
	return env
}
