package catalog

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource yields the server's own Backstage credential for each request.
// It is never the end user's token.
type TokenSource interface {
	Token() (string, error)
}

// StaticToken is a fixed credential (from config or the environment).
type StaticToken string

var (
	_ TokenSource = StaticToken("")
	_ TokenSource = (*FileToken)(nil)
)

// Token returns the fixed credential.
func (t StaticToken) Token() (string, error) {
	if strings.TrimSpace(string(t)) == "" {
		return "", fmt.Errorf("catalog: empty Backstage token")
	}
	return string(t), nil
}

// FileToken reads the credential from a file and re-reads it whenever the
// file's size or modification time changes, so a rotated credential is
// picked up without a restart.
type FileToken struct {
	Path string

	mu      sync.Mutex
	mod     time.Time
	size    int64
	current string
}

// NewFileToken reads the file once so a missing credential fails at start.
func NewFileToken(path string) (*FileToken, error) {
	ft := &FileToken{Path: path}
	if _, err := ft.Token(); err != nil {
		return nil, err
	}
	return ft, nil
}

// Token returns the file's trimmed content, re-reading it when it changed.
func (f *FileToken) Token() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.Path)
	if err != nil {
		return "", fmt.Errorf("catalog: token file: %w", err)
	}
	if f.current != "" && st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.current, nil
	}
	if st.Size() > 64<<10 {
		return "", fmt.Errorf("catalog: token file %s is larger than 64 KiB", f.Path)
	}
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return "", fmt.Errorf("catalog: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("catalog: token file %s is empty", f.Path)
	}
	f.current, f.mod, f.size = tok, st.ModTime(), st.Size()
	return tok, nil
}
