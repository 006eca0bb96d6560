package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// openAudit opens the audit trail. When the config leaves audit.path at its
// default (audit.log in the working directory), two kinds of process choose
// another file: a demo gets a folder of its own, and direct stdio, started
// by an IDE in whatever folder it is in, writes to the user's state folder,
// or beside it when another stdio server of the user holds that file.
func openAudit(acfg audit.Config, bo BuildOptions, log *slog.Logger) (*audit.Log, audit.Config, error) {
	if acfg.Sink == audit.SinkStdout {
		acfg.Stdout = bo.Stdout
	}
	defaultFile := acfg.Sink == audit.SinkFile && acfg.Path == audit.DefaultConfig().Path
	stdioDefault := false
	switch {
	case defaultFile && bo.Demo:
		dir, err := demoAuditDir(time.Now())
		if err != nil {
			return nil, acfg, err
		}
		acfg.Path = filepath.Join(dir, "audit.log")
	case defaultFile && bo.Stdio:
		dir, err := userStateDir()
		if err != nil {
			return nil, acfg, fmt.Errorf("server: audit: no per-user folder for the default trail (%w); set audit.path in the config", err)
		}
		acfg.Path = filepath.Join(dir, "backstage-mcp", "audit.log")
		stdioDefault = true
	}
	alog, err := audit.Open(acfg)
	if stdioDefault && errors.Is(err, audit.ErrLocked) {
		// Another IDE window's server holds the default trail: this process
		// keeps a chain of its own beside it, named for it.
		pid := strconv.Itoa(os.Getpid())
		acfg.Path = filepath.Join(filepath.Dir(acfg.Path), "audit-"+pid+".log")
		acfg.Replica = acfg.Replica + "-" + pid
		log.Info("another backstage-mcp process writes the default audit trail; this one keeps its own", "path", acfg.Path)
		alog, err = audit.Open(acfg)
	}
	if err != nil {
		return nil, acfg, fmt.Errorf("server: audit trail %s: %w (set audit.path in the config to a file this user may write)", acfg.Path, err)
	}
	return alog, acfg, nil
}

// demoAuditDir makes a new folder for one demo process's audit trail under
// $TMPDIR/backstage-mcp-demo, named after its start time (so `ls -t` lists
// the latest first) plus a random suffix. Each process gets its own: the
// audit file is locked by the process that writes it, and an HTTP demo and
// any number of stdio demos (one per IDE window) must run side by side.
func demoAuditDir(now time.Time) (string, error) {
	base := filepath.Join(os.TempDir(), "backstage-mcp-demo")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("server: demo audit folder: %w", err)
	}
	dir, err := os.MkdirTemp(base, now.UTC().Format("20060102T150405Z")+"-")
	if err != nil {
		return "", fmt.Errorf("server: demo audit folder: %w", err)
	}
	return dir, nil
}

// userStateDir is where per-user state goes: $XDG_STATE_HOME, else
// ~/.local/state on Linux and other Unix systems, the user config folder on
// macOS (~/Library/Application Support) and %LocalAppData% on Windows.
func userStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return d, nil
	}
	switch runtime.GOOS {
	case "darwin":
		return os.UserConfigDir()
	case "windows":
		return os.UserCacheDir()
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state"), nil
}
