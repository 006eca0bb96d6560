package ship

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// errDamagedState means the state file could not be read as a state.
var errDamagedState = errors.New("ship: damaged state file; shipping the trail from its start")

// stateSyncEvery bounds how often the state file is synced: a position
// lost in a power failure means a few batches are sent again, which
// at-least-once delivery allows, while a sync per batch would bound the
// export's throughput by the disk.
const stateSyncEvery = time.Second

// state is what a shipper keeps on disk: the last record its sink
// acknowledged.
type state struct {
	// Seq and Hash are those of the last acknowledged record.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash,omitempty"`
	// Time is when it was acknowledged.
	Time time.Time `json:"time"`
}

// StatePath is the state file of sink name for the audit file path:
// hidden, like the audit file's lock, so that a glob such as audit.log*
// given to "audit verify" does not pick it up.
func StatePath(path, name string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".ship-"+name+".json")
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
		// A state lost in a power failure: sending the trail again from
		// its start keeps every record delivered (at least once).
		return state{}, fmt.Errorf("%w: %s: %w", errDamagedState, file, err)
	}
	return st, nil
}

// saveState replaces the state file atomically (write, rename; with sync
// first when sync is true): a crash leaves the old or the new state, and an
// old one only means records are sent again.
func saveState(file string, st state, sync bool) error {
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
	if sync {
		if err := tmp.Sync(); err != nil {
			_ = tmp.Close()
			return fmt.Errorf("ship: sync state: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ship: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("ship: replace state: %w", err)
	}
	return nil
}
