package login

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/oauth2"
)

// FileName is the token store's file name inside its directory.
const FileName = "token.json"

// ErrNotLoggedIn means the store holds no token for the issuer.
var ErrNotLoggedIn = errors.New("login: not logged in (run `backstage-mcp login`)")

// ErrInsecureStore means the token file or its directory can be read or
// written by other users; it is not read.
var ErrInsecureStore = errors.New("login: token store permissions are too open")

// Entry is what is kept per issuer: the token and what is needed to refresh
// and revoke it without a new discovery.
type Entry struct {
	Issuer        string        `json:"issuer"`
	ClientID      string        `json:"clientID"`
	TokenURL      string        `json:"tokenURL"`
	RevocationURL string        `json:"revocationURL,omitempty"`
	Scopes        []string      `json:"scopes,omitempty"`
	Resource      string        `json:"resource,omitempty"`
	Audience      string        `json:"audience,omitempty"`
	Token         *oauth2.Token `json:"token"`
}

type storeFile struct {
	Version int               `json:"version"`
	Tokens  map[string]*Entry `json:"tokens"`
}

// Store is a token file with mode 0600 in a directory with mode 0700,
// written atomically and keyed by issuer. Methods are safe for concurrent use
// within one process.
type Store struct {
	// Dir is the directory holding token.json.
	Dir string
	mu  sync.Mutex
}

// DefaultStore is the store in os.UserConfigDir()/backstage-mcp.
func DefaultStore() (*Store, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("login: config dir: %w", err)
	}
	return &Store{Dir: filepath.Join(dir, "backstage-mcp")}, nil
}

// Path returns the token file path.
func (s *Store) Path() string { return filepath.Join(s.Dir, FileName) }

// Load returns the entry of issuer, or ErrNotLoggedIn.
func (s *Store) Load(issuer string) (*Entry, error) { return s.LoadKey(issuer) }

// LoadKey returns the entry kept under key, or ErrNotLoggedIn. Login keeps
// entries under their issuer unless Options.StoreKey names another key
// (connect keeps one per MCP server).
func (s *Store) LoadKey(key string) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	e, ok := f.Tokens[key]
	if !ok || e == nil || e.Token == nil {
		return nil, ErrNotLoggedIn
	}
	return e, nil
}

// Save stores e under e.Issuer, replacing any previous entry.
func (s *Store) Save(e *Entry) error { return s.SaveKey(e.Issuer, e) }

// SaveKey stores e under key, replacing any previous entry.
func (s *Store) SaveKey(key string, e *Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.read()
	if err != nil && !errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	f.Tokens[key] = e
	return s.write(f)
}

// Delete removes the entry of issuer; it reports whether one existed.
func (s *Store) Delete(issuer string) (bool, error) { return s.DeleteKey(issuer) }

// DeleteKey removes the entry kept under key; it reports whether one existed.
func (s *Store) DeleteKey(key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.read()
	if errors.Is(err, ErrNotLoggedIn) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, ok := f.Tokens[key]; !ok {
		return false, nil
	}
	delete(f.Tokens, key)
	if len(f.Tokens) == 0 {
		if err := os.Remove(s.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("login: remove token file: %w", err)
		}
		return true, nil
	}
	return true, s.write(f)
}

// read loads the file; a missing file is an empty store (ErrNotLoggedIn
// with a usable empty value).
func (s *Store) read() (*storeFile, error) {
	empty := &storeFile{Version: 1, Tokens: map[string]*Entry{}}
	fi, err := os.Lstat(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return empty, ErrNotLoggedIn
	}
	if err != nil {
		return empty, fmt.Errorf("login: stat token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return empty, fmt.Errorf("%w: %s is not a regular file", ErrInsecureStore, s.Path())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return empty, fmt.Errorf("%w: %s has mode %o, want 0600 (chmod 600 it or log in again)", ErrInsecureStore, s.Path(), fi.Mode().Perm())
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		return empty, fmt.Errorf("login: read token file: %w", err)
	}
	var f storeFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return empty, fmt.Errorf("login: parse token file: %w", err)
	}
	if f.Tokens == nil {
		f.Tokens = map[string]*Entry{}
	}
	return &f, nil
}

// write replaces the file atomically: a 0600 temporary file in the same
// 0700 directory, synced, then renamed over the old one.
func (s *Store) write(f *storeFile) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("login: create %s: %w", s.Dir, err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(s.Dir, 0o700); err != nil { //nolint:gosec // a directory needs x; 0700 is owner-only
			return fmt.Errorf("login: chmod %s: %w", s.Dir, err)
		}
	}
	f.Version = 1
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("login: encode token file: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".token-*.json")
	if err != nil {
		return fmt.Errorf("login: temp file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("login: chmod temp file: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("login: write temp file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("login: sync temp file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("login: close temp file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.Path()); err != nil {
		return fmt.Errorf("login: replace token file: %w", err)
	}
	return nil
}
