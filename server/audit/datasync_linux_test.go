package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataSyncer: fdatasync succeeds on an open file whose record reads
// back, and fails, so that the answer is withheld, on a closed one.
func TestDataSyncer(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := dataSyncer(f)
	if _, err := f.WriteString("{\"seq\":1}\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("sync of an open file: %v", err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil || string(b) != "{\"seq\":1}\n" {
		t.Fatalf("read back %q, %v", b, err)
	}
	_ = f.Close()
	if err := s.Sync(); err == nil {
		t.Fatal("sync of a closed file succeeded")
	}
}
