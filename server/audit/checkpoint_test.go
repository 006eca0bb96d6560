package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// writeKey writes a new key pair and returns the private key file and the
// public key.
func writeKey(t *testing.T, dir string) (string, ed25519.PublicKey) {
	t.Helper()
	privPEM, pubPEM, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "key.pub.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadVerifyKeys(pubFile)
	if err != nil || len(keys) != 1 {
		t.Fatalf("LoadVerifyKeys = %v, %v", keys, err)
	}
	return priv, keys[0]
}

// signedLog writes 23 records with a checkpoint every 5 and a copy of the
// checkpoints: lines 6, 12, 18, 24 and (on Close) 28 are checkpoints.
func signedLog(t *testing.T, keyFile string) (path, side string) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Path = filepath.Join(dir, "audit.log")
	cfg.Checkpoint = CheckpointConfig{KeyFile: keyFile, Every: 5, Interval: time.Hour, File: filepath.Join(dir, "copies", "checkpoints.log")}
	l := openTest(t, cfg)
	appendN(t, l, 23)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Path, cfg.Checkpoint.File
}

// rechain renumbers lines from seq 1 and recomputes every hash, as a
// forger without the key would after deleting, inserting or moving
// records. With forgeKey, checkpoints are re-signed with it.
func rechain(t *testing.T, lines []string, forgeKey ed25519.PrivateKey) []string {
	t.Helper()
	out := make([]string, len(lines))
	prev := GenesisHash
	for i, line := range lines {
		r, err := parseLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		r.Seq, r.PrevHash = uint64(i+1), prev
		if forgeKey != nil && r.Checkpoint != nil {
			r.Checkpoint.Head = Anchor{Seq: uint64(i), Hash: prev}
			r.Checkpoint.KeyID = KeyID(forgeKey.Public().(ed25519.PublicKey))
			r.Checkpoint.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(forgeKey, SignedMessage(r)))
		}
		b, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i], prev = strings.TrimSuffix(string(b), "\n"), r.Hash
	}
	return out
}

func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	return writeTemp(t, []byte(strings.Join(lines, "\n")+"\n"))
}

func without(lines []string, drop ...int) []string {
	var out []string
	for i, l := range lines {
		if !containsInt(drop, i+1) {
			out = append(out, l)
		}
	}
	return out
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// TestCheckpointTamperMatrix tampers with a signed log in every way the
// issue lists and checks that `verify --key` catches each, naming the kind
// and the line.
func TestCheckpointTamperMatrix(t *testing.T) {
	dir := t.TempDir()
	keyFile, pub := writeKey(t, dir)
	_, attacker, _ := ed25519.GenerateKey(nil)
	path, side := signedLog(t, keyFile)
	orig := readLines(t, path)
	if len(orig) != 28 {
		t.Fatalf("%d lines, want 23 records and 5 checkpoints", len(orig))
	}
	for i, n := range []int{6, 12, 18, 24, 28} {
		if !strings.Contains(orig[n-1], `"type":"checkpoint"`) {
			t.Fatalf("line %d is not checkpoint %d: %s", n, i+1, orig[n-1])
		}
	}
	copies := readLines(t, side)
	if len(copies) != 5 || copies[4] != orig[27] {
		t.Fatalf("checkpoint file holds %d lines, want the 5 checkpoint lines of the log", len(copies))
	}

	// The intact log verifies, with the key and the copies.
	res, err := VerifyWithOptions(VerifyOptions{Keys: []ed25519.PublicKey{pub}, CheckpointFiles: []string{side}}, path)
	if err != nil || !res.OK || res.Checkpoints != 5 || res.SignedSeq != 27 || res.Unsigned != 0 || res.CheckpointCopies != 5 {
		t.Fatalf("intact log: %+v, %v", res, err)
	}

	edited := append([]string(nil), orig...)
	edited[8] = strings.Replace(edited[8], `"tool-`, `"TOOL-`, 1) // line 9

	tests := []struct {
		name     string
		lines    []string
		withSide bool
		kind     ProblemKind
		line     int // where the problem is reported
	}{
		{"edit", edited, false, ProblemEdited, 9},
		{"edit and rehash", rechain(t, edited, nil), false, ProblemRewritten, 12},
		{"delete", without(orig, 9), false, ProblemDeleted, 9},
		{"delete and renumber with rehash", rechain(t, without(orig, 9), nil), false, ProblemRewritten, 11},
		{"reorder within an interval", append(append(append([]string{}, orig[:7]...), orig[8], orig[7]), orig[9:]...), false, ProblemReordered, 8},
		{"reorder across checkpoints with rehash", rechain(t, append(append(append(append([]string{}, orig[:4]...), orig[6]), orig[4:6]...), orig[7:]...), nil), false, ProblemRewritten, 7},
		{"truncate the tail after a checkpoint", orig[:18], true, ProblemTruncated, 18},
		{"truncate mid-interval", orig[:21], true, ProblemTruncated, 21},
		{"remove a checkpoint and rehash", rechain(t, without(orig, 12), nil), false, ProblemRewritten, 17},
		{"remove the last checkpoints and rehash", rechain(t, without(orig, 18, 24, 28), nil), false, ProblemRewritten, 25},
		{"strip every checkpoint and rehash", rechain(t, without(orig, 6, 12, 18, 24, 28), nil), false, ProblemRewritten, 23},
		{"checkpoint forged with another key", rechain(t, without(orig, 9), attacker), false, ProblemForged, 6},
		{"checkpoint edited and rehashed", rechain(t, append(append(append([]string{}, orig[:11]...), strings.Replace(orig[11], `"every":5`, `"every":9`, 1)), orig[12:]...), nil), false, ProblemForged, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := VerifyOptions{Keys: []ed25519.PublicKey{pub}}
			if tt.withSide {
				opts.CheckpointFiles = []string{side}
			}
			res, err := VerifyWithOptions(opts, writeLines(t, tt.lines))
			if err != nil {
				t.Fatal(err)
			}
			if res.OK {
				t.Fatalf("tampering not detected: %+v", res)
			}
			p := res.Problem
			t.Logf("%s", p.Error())
			if p.Kind != tt.kind || p.Line != tt.line {
				t.Errorf("problem %s at line %d, want %s at line %d", p.Kind, p.Line, tt.kind, tt.line)
			}
		})
	}
}

// TestCheckpointResumeAndInterval covers the resume checkpoint after a
// crash (records no checkpoint covers), the timer, and the key from
// openssl.
func TestCheckpointResumeAndInterval(t *testing.T) {
	dir := t.TempDir()
	keyFile, pub := writeKey(t, dir)
	cfg := testConfig(t)
	cfg.Now = time.Now
	cfg.Checkpoint = CheckpointConfig{KeyFile: keyFile, Every: 100, Interval: time.Second}

	// A log written without checkpoints, then opened with a key: the
	// first thing written is a resume checkpoint over the old records.
	plain := cfg
	plain.Checkpoint = CheckpointConfig{}
	l := openTest(t, plain)
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, cfg)
	appendN(t, l, 2)
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Checkpoints < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := l.Stats().Checkpoints; got != 2 {
		t.Fatalf("%d checkpoints, want the resume checkpoint and one from the timer", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, cfg.Path)
	if len(lines) != 7 || !strings.Contains(lines[3], `"resume":true`) || !strings.Contains(lines[6], `"type":"checkpoint"`) {
		t.Fatalf("lines:\n%s", strings.Join(lines, "\n"))
	}
	res, err := VerifyWithOptions(VerifyOptions{Keys: []ed25519.PublicKey{pub}}, cfg.Path)
	if err != nil || !res.OK || res.Checkpoints != 2 || res.SignedSeq != 6 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	// Verifying with another key fails at the first checkpoint.
	_, other := writeKey(t, t.TempDir())
	res, _ = VerifyWithOptions(VerifyOptions{Keys: []ed25519.PublicKey{other}}, cfg.Path)
	if res.OK || res.Problem.Kind != ProblemForged || res.Problem.Line != 4 {
		t.Fatalf("verify with another key: %+v", res.Problem)
	}
}

// TestCheckpointKeyFromOpenSSL proves the key format against a tool this
// project did not write: openssl makes the private key and derives the
// public key; the log signs with the first and verifies with the second.
func TestCheckpointKeyFromOpenSSL(t *testing.T) {
	openssl := testtools.Need(t, "openssl", "openssl")
	dir := t.TempDir()
	priv := filepath.Join(dir, "openssl-key.pem")
	pubFile := filepath.Join(dir, "openssl-key.pub.pem")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "ed25519", "-out", priv},
		{"pkey", "-in", priv, "-pubout", "-out", pubFile},
	} {
		if out, err := exec.CommandContext(context.Background(), openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	keys, err := LoadVerifyKeys(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Checkpoint = CheckpointConfig{KeyFile: priv, Every: 2, Interval: time.Hour}
	l := openTest(t, cfg)
	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyWithOptions(VerifyOptions{Keys: keys}, cfg.Path)
	if err != nil || !res.OK || res.Checkpoints != 3 {
		t.Fatalf("verify with the openssl public key: %+v, %v", res, err)
	}
	// And the private key file itself works as the verification key.
	both, err := LoadVerifyKeys(priv)
	if err != nil || KeyID(both[0]) != KeyID(keys[0]) {
		t.Fatalf("key id from the private key %v, %v; want %s", both, err, KeyID(keys[0]))
	}
}

func TestCheckpointConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cc := range map[string]CheckpointConfig{
		"missing key file": {KeyFile: filepath.Join(dir, "nope.pem")},
		"not PEM":          {KeyFile: bad},
		"file without key": {File: filepath.Join(dir, "cp.log")},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Checkpoint = cc
			if l, err := Open(cfg); err == nil {
				_ = l.Close()
				t.Fatal("Open succeeded")
			} else {
				t.Log(err)
			}
		})
	}
	cfg := testConfig(t)
	if err := cfg.Checkpoint.KeyFile; err != "" {
		t.Fatal("default config signs")
	}
	r := &Record{Type: TypeCheckpoint}
	l := openTest(t, cfg)
	if err := l.Append(context.Background(), r); err == nil {
		t.Fatal("Append accepted a checkpoint from a caller")
	}
}

// TestCheckpointCopyFailureTurnsReadinessRed: when the copy of the
// checkpoints cannot be written, calls go on (their records are durable in
// the log) but Healthy reports it, so readiness turns red.
func TestCheckpointCopyFailureTurnsReadinessRed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	keyFile, _ := writeKey(t, t.TempDir())
	cfg := testConfig(t)
	cfg.Checkpoint = CheckpointConfig{KeyFile: keyFile, Every: 2, Interval: time.Hour, File: "/dev/full"}
	l := openTest(t, cfg)
	appendN(t, l, 3) // fails the test if an Append fails
	err := l.Healthy()
	if err == nil || !strings.Contains(err.Error(), "checkpoint file") {
		t.Fatalf("Healthy() = %v, want the checkpoint file's failure", err)
	}
	appendN(t, l, 1)
	if l.Healthy() == nil {
		t.Fatal("a later record without a checkpoint cleared the copy's failure")
	}
}
