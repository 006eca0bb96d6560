package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rehash recomputes the hash of an edited line, as an attacker would.
func rehash(line string) string {
	i := strings.LastIndex(line, `"hash":"`)
	empty := line[:i] + `"hash":""}`
	sum := sha256.Sum256([]byte(empty))
	return line[:i] + `"hash":"` + hex.EncodeToString(sum[:]) + `"}`
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(lines []string) []string
		anchor   func(recs []*Record) []Anchor
		wantOK   bool
		wantKind ProblemKind
		wantLine int
		wantTorn []int
	}{
		{
			name:   "untouched",
			mutate: func(l []string) []string { return l },
			wantOK: true,
		},
		{
			name: "edited field",
			mutate: func(l []string) []string {
				l[4] = strings.Replace(l[4], `"tool":"tool-4"`, `"tool":"tool-X"`, 1)
				return l
			},
			wantKind: ProblemEdited, wantLine: 5,
		},
		{
			name: "edited whitespace only",
			mutate: func(l []string) []string {
				l[4] = strings.Replace(l[4], `,"tool"`, `, "tool"`, 1)
				return l
			},
			wantKind: ProblemEdited, wantLine: 5,
		},
		{
			name: "edited and re-hashed",
			mutate: func(l []string) []string {
				l[4] = rehash(strings.Replace(l[4], `"decision":"allow"`, `"decision":"deny"`, 1))
				return l
			},
			wantKind: ProblemEdited, wantLine: 6,
		},
		{
			name:     "deleted record",
			mutate:   func(l []string) []string { return append(l[:4:4], l[5:]...) },
			wantKind: ProblemDeleted, wantLine: 5,
		},
		{
			name: "swapped records",
			mutate: func(l []string) []string {
				l[3], l[4] = l[4], l[3]
				return l
			},
			wantKind: ProblemReordered, wantLine: 4,
		},
		{
			name: "duplicated record",
			mutate: func(l []string) []string {
				return append(l[:5:5], append([]string{l[4]}, l[5:]...)...)
			},
			wantKind: ProblemDuplicated, wantLine: 6,
		},
		{
			name: "record replaced by garbage",
			mutate: func(l []string) []string {
				l[4] = `{"time":"2025-03-01T12:00:00Z","id":`
				return l
			},
			wantKind: ProblemEdited, wantLine: 5,
		},
		{
			name: "torn last line",
			mutate: func(l []string) []string {
				return append(l, l[9][:40])
			},
			wantOK: true, wantTorn: []int{11},
		},
		{
			name:   "tail records removed (undetectable without anchor)",
			mutate: func(l []string) []string { return l[:8] },
			wantOK: true,
		},
		{
			name:   "tail records removed, anchor given",
			mutate: func(l []string) []string { return l[:8] },
			anchor: func(r []*Record) []Anchor {
				return []Anchor{{Seq: r[9].Seq, Hash: r[9].Hash}}
			},
			wantKind: ProblemTruncated, wantLine: 8,
		},
		{
			name: "last record rewritten, anchor given",
			mutate: func(l []string) []string {
				l[9] = rehash(strings.Replace(l[9], `"tool":"tool-9"`, `"tool":"tool-X"`, 1))
				return l
			},
			anchor: func(r []*Record) []Anchor {
				return []Anchor{{Seq: r[9].Seq, Hash: r[9].Hash}}
			},
			wantKind: ProblemEdited, wantLine: 10,
		},
		{
			name:   "intact log matches anchor",
			mutate: func(l []string) []string { return l },
			anchor: func(r []*Record) []Anchor {
				return []Anchor{{Seq: r[5].Seq, Hash: r[5].Hash}}
			},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			l := openTest(t, cfg)
			recs := appendN(t, l, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := tt.mutate(readLines(t, cfg.Path))
			if err := os.WriteFile(cfg.Path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var opts VerifyOptions
			if tt.anchor != nil {
				opts.Anchors = tt.anchor(recs)
			}
			res, err := VerifyWithOptions(opts, cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != tt.wantOK {
				t.Fatalf("OK = %v, want %v (problem: %v)", res.OK, tt.wantOK, res.Problem)
			}
			if !tt.wantOK {
				if res.Problem == nil || res.Problem.Kind != tt.wantKind || res.Problem.Line != tt.wantLine {
					t.Fatalf("problem = %v, want %s at line %d", res.Problem, tt.wantKind, tt.wantLine)
				}
				if res.Problem.Detail == "" {
					t.Error("problem has no detail")
				}
			}
			var torn []int
			for _, loc := range res.Torn {
				torn = append(torn, loc.Line)
			}
			if len(torn) != len(tt.wantTorn) || (len(torn) > 0 && torn[0] != tt.wantTorn[0]) {
				t.Errorf("torn = %v, want %v", torn, tt.wantTorn)
			}
		})
	}
}

func TestVerifyAcrossFiles(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(t *testing.T, files []string) []string
		wantOK   bool
		wantKind ProblemKind
	}{
		{
			name:   "intact",
			mutate: func(t *testing.T, f []string) []string { return f },
			wantOK: true,
		},
		{
			name: "rotated file truncated",
			mutate: func(t *testing.T, f []string) []string {
				lines := readLines(t, f[1])
				if err := os.WriteFile(f[1], []byte(strings.Join(lines[:len(lines)-1], "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			},
			wantKind: ProblemTruncated,
		},
		{
			name:     "middle file removed",
			mutate:   func(t *testing.T, f []string) []string { return append(f[:1:1], f[2:]...) },
			wantKind: ProblemTruncated,
		},
		{
			name:   "oldest file removed (chain starts mid-way)",
			mutate: func(t *testing.T, f []string) []string { return f[1:] },
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MaxBytes = 1500
			l := openTest(t, cfg)
			appendN(t, l, 30)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := Files(cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < 4 {
				t.Fatalf("want at least 4 files, got %d", len(files))
			}
			res, err := Verify(tt.mutate(t, files)...)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != tt.wantOK {
				t.Fatalf("OK = %v, want %v (problem: %v)", res.OK, tt.wantOK, res.Problem)
			}
			if !tt.wantOK && res.Problem.Kind != tt.wantKind {
				t.Errorf("problem = %v, want %s", res.Problem, tt.wantKind)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	if _, err := Verify(); err == nil {
		t.Error("Verify() with no files succeeded")
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "missing.log")); err == nil {
		t.Error("Verify of a missing file succeeded")
	}
}

func TestVerifyEmptyFile(t *testing.T) {
	res := mustVerifyOK(t, writeTemp(t, nil))
	if res.Records != 0 {
		t.Errorf("records = %d", res.Records)
	}
}
