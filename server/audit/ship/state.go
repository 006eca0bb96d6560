package ship

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// state is what a shipper keeps on disk: the last record its sink
// acknowledged.
type state struct {
	// Seq and Hash are those of the last acknowledged record.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash,omitempty"`
	// Time is when it was acknowledged.
	Time time.Time `json:"time"`
}

// StatePath is the state file of sink name for the audit file path.
func StatePath(path, name string) string {
	return path + ".ship-" + name + ".json"
}

func loadState(file string) (state, error) {
	var st state
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("ship: read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("ship: state file %s is damaged (%w); delete it to resend the whole trail", file, err)
	}
	return st, nil
}

// saveState replaces the state file atomically (write, sync, rename): a
// crash leaves the old or the new state, and an old one only means records
// are sent again.
func saveState(file string, st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("ship: encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.tmp")
	if err != nil {
		return fmt.Errorf("ship: write state: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("ship: write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("ship: sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ship: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("ship: replace state: %w", err)
	}
	return nil
}
