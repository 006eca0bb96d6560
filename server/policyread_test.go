package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
)

// TestReadPolicyFileIsBounded: the one policy reader takes a file of
// policyfile.MaxSize bytes and refuses one byte more, naming the file.
func TestReadPolicyFileIsBounded(t *testing.T) {
	dir := t.TempDir()
	at := filepath.Join(dir, "at.yaml")
	over := filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(at, []byte(strings.Repeat("#", policyfile.MaxSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, []byte(strings.Repeat("#", policyfile.MaxSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPolicyFile(at); err != nil || len(b) != policyfile.MaxSize {
		t.Fatalf("at the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadPolicyFile(over); err == nil || !strings.Contains(err.Error(), over) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadPolicyFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("a missing file was read")
	}
}
