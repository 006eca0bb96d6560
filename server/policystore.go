package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
)

// PolicyStore holds the current compiled policy and reloads it from its
// file. An invalid new file never replaces a valid policy.
type PolicyStore struct {
	path string
	// check validates a freshly parsed policy beyond the file itself
	// (for example that its rate classes exist).
	check func(*policy.Policy, policy.Document) error

	mu      sync.RWMutex
	pol     *policy.Policy
	version string // sha256 of the file, short
	data    []byte
	mod     time.Time
}

// NewPolicyStore loads path; the first load must succeed.
func NewPolicyStore(path string, check func(*policy.Policy, policy.Document) error) (*PolicyStore, error) {
	ps := &PolicyStore{path: path, check: check}
	if _, err := ps.Reload(); err != nil {
		return nil, err
	}
	return ps, nil
}

// ReadPolicyFile is the one reader of a policy file (serve, its reloads,
// config check and the policy commands): at most policyfile.MaxSize
// bytes, however large the file grows while it is read.
func ReadPolicyFile(path string) ([]byte, error) {
	data, err := readLimited(path, "policy", policyfile.MaxSize)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > policyfile.MaxSize {
		return nil, fmt.Errorf("server: policy %s is larger than %d bytes", path, policyfile.MaxSize)
	}
	return data, nil
}

// NewStaticPolicyStore serves a policy parsed from bytes (the demo's
// embedded policy); Reload is a no-op.
func NewStaticPolicyStore(data []byte, name string) (*PolicyStore, error) {
	pol, _, err := policyfile.Parse(data, name)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return &PolicyStore{pol: pol, version: shortHash(data), data: data}, nil
}

// Current returns the policy in force and its version.
func (ps *PolicyStore) Current() (*policy.Policy, string) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.pol, ps.version
}

// Path returns the policy file, empty for a static policy.
func (ps *PolicyStore) Path() string { return ps.path }

// Reload re-reads the file. changed reports whether a new policy is now in
// force; on error the old one stays.
func (ps *PolicyStore) Reload() (changed bool, err error) {
	if ps.path == "" {
		return false, nil
	}
	st, err := os.Stat(ps.path)
	if err != nil {
		return false, fmt.Errorf("server: policy: %w", err)
	}
	if st.Size() > policyfile.MaxSize {
		return false, fmt.Errorf("server: policy %s is larger than %d bytes", ps.path, policyfile.MaxSize)
	}
	ps.mu.Lock()
	ps.mod = st.ModTime() // a failed attempt is not retried until the file changes again
	ps.mu.Unlock()
	data, err := ReadPolicyFile(ps.path)
	if err != nil {
		return false, err
	}
	ps.mu.RLock()
	same := ps.pol != nil && bytes.Equal(data, ps.data)
	ps.mu.RUnlock()
	if same {
		return false, nil
	}
	pol, doc, err := policyfile.Parse(data, ps.path)
	if err != nil {
		return false, fmt.Errorf("server: %w", err)
	}
	if ps.check != nil {
		if err := ps.check(pol, doc); err != nil {
			return false, fmt.Errorf("server: policy %s: %w", ps.path, err)
		}
	}
	ps.mu.Lock()
	ps.pol, ps.data, ps.version = pol, data, shortHash(data)
	ps.mu.Unlock()
	return true, nil
}

// changedOnDisk reports whether the file's modification time moved.
func (ps *PolicyStore) changedOnDisk() bool {
	if ps.path == "" {
		return false
	}
	st, err := os.Stat(ps.path)
	if err != nil {
		return true // let Reload report it
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return !st.ModTime().Equal(ps.mod)
}

// Watch reloads on every value from hup and when the file changes (polled
// every interval; interval ≤ 0 disables polling) until ctx ends. report
// is called after every attempt that changed something or failed.
func (ps *PolicyStore) Watch(ctx context.Context, hup <-chan os.Signal, interval time.Duration, report func(changed bool, err error)) {
	var tick <-chan time.Time
	if interval > 0 && ps.path != "" {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick:
			if !ps.changedOnDisk() {
				continue
			}
		}
		changed, err := ps.Reload()
		if changed || err != nil {
			report(changed, err)
		}
	}
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
