package redact

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLineScanEqualsWholeText is the differential test of the line scan:
// on every document of the own corpus, every outside example (alone and all
// of a corpus joined into one text), the look-alike corpus and texts glued
// from them, the findings with the line scan equal those of every pattern
// run over the whole text.
func TestLineScanEqualsWholeText(t *testing.T) {
	fast, err := New()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := New()
	if err != nil {
		t.Fatal(err)
	}
	whole.wholeText = true
	texts := lineScanTexts(t)
	safe, prefixed := 0, 0
	for _, ru := range fast.rules {
		if ru.lineSafe && ru.lits != nil {
			safe++
		} else if ru.prefixLits != nil {
			prefixed++
		}
	}
	if safe < len(fast.rules)/2 {
		t.Fatalf("only %d of %d rules take the line scan", safe, len(fast.rules))
	}
	n := 0
	for i, s := range texts {
		if testing.Short() && len(s) < lineScanMin {
			continue // both runs take the same path below the line scan's length
		}
		a, b := fast.detect([]byte(s), nil), whole.detect([]byte(s), nil)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("text %d (%d bytes): line scan %v, whole text %v", i, len(s), a, b)
		}
		n += len(s)
	}
	t.Logf("%d texts, %d bytes; of %d rules %d take the line scan, %d the prefix scan", len(texts), n, len(fast.rules), safe, prefixed)
}

func lineScanTexts(t *testing.T) []string {
	t.Helper()
	var texts []string
	read := func(p string, field string) []string {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if s, ok := m[field].(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	root := filepath.Join("..", "testdata", "redact")
	own := read(filepath.Join(root, "corpus.jsonl"), "input")
	np := read(filepath.Join(root, "outside", "noseyparker.jsonl"), "text")
	kf := read(filepath.Join(root, "outside", "kingfisher.jsonl"), "text")
	texts = append(texts, own...)
	texts = append(texts, np...)
	texts = append(texts, kf...)
	// Long texts, where the line scan is used: each corpus joined, with
	// newlines and with other separators, and the look-alike files.
	// The whole-text run is the slow path this test compares against:
	// -short takes the first 64 KB of each joined corpus and 16 KB of each
	// look-alike file (under -race it is still the slowest test here).
	joinMax, limit := 1<<30, int64(256<<10)
	if testing.Short() {
		joinMax, limit = 64<<10, 16<<10
	}
	for _, set := range [][]string{own, np, kf} {
		j := strings.Join(set, "\n")
		if len(j) > joinMax {
			j = j[:strings.LastIndexByte(j[:joinMax], '\n')]
		}
		texts = append(texts, j)
		if !testing.Short() {
			texts = append(texts, strings.Join(set, " \r\n"))
		}
	}
	err := filepath.WalkDir(filepath.Join(root, "lookalike"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(p) == "NOTICE" {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			z, err := gzip.NewReader(f)
			if err != nil {
				return err
			}
			r = z
		}
		r = io.LimitReader(r, limit)
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		texts = append(texts, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

// TestFastPathsEqualWholeTextRandom is the differential test of the fast
// paths (the line scan, the prefix scan, the lead-class scan, the per-line
// needs and the one-pass literal automaton) against every pattern run over
// the whole text, and of the rounds after the first, which read a long text
// only around their markers (process), against rounds that read it whole.
// On the long corpus texts (each corpus joined, the look-alike files) and on
// random text (corpus fragments cut at random places, the rules' own
// literals, separators, escapes, newlines and the two non-ASCII runes that
// fold to ASCII letters, shuffled into texts past the line scan's length),
// Text must give byte-identical output, with the same report, both ways.
func TestFastPathsEqualWholeTextRandom(t *testing.T) {
	fast, err := New()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := New()
	if err != nil {
		t.Fatal(err)
	}
	whole.wholeText = true
	whole.wholeRound = true
	corpus := lineScanTexts(t)
	var words []string
	for _, ru := range fast.rules {
		words = append(words, ru.lits...)
		words = append(words, ru.prefixLits...)
		words = append(words, ru.need...)
		words = append(words, ru.keywords...)
	}
	words = append(words, "\u212a", "\u017f", "\u212aey=", "\u017fecret: ", "\\n", "%3D", "%20", "?", "&", "=", ": ", "'", "\"", ";", "\t", "\r\n", "\n", "\n\n",
		"pwd = ", "Password=", ";Password=", "\"password = ", "sig=", " -p ", "://", "@", "host=db;", "Server=x;")
	rng := rand.New(rand.NewPCG(29, 1))
	pick := func() string {
		switch rng.IntN(4) {
		case 0:
			return words[rng.IntN(len(words))]
		case 1:
			b := make([]byte, 1+rng.IntN(48))
			const alpha = "abcdefABCDEF0123456789xyzXYZ_-+/=.:@ \n\t%\\\"'"
			for i := range b {
				b[i] = alpha[rng.IntN(len(alpha))]
			}
			return string(b)
		default:
			s := corpus[rng.IntN(len(corpus))]
			if len(s) == 0 {
				return ""
			}
			a := rng.IntN(len(s))
			return s[a:min(len(s), a+1+rng.IntN(400))]
		}
	}
	for i, s := range corpus {
		if len(s) < lineScanMin {
			continue
		}
		a, ra := fast.Text(s)
		b, rb := whole.Text(s)
		if a != b || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("corpus text %d (%d bytes): fast and whole paths differ:\nfast  %v\nwhole %v", i, len(s), ra, rb)
		}
	}
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := 0; i < n; i++ {
		var sb strings.Builder
		size := lineScanMin + rng.IntN(6*lineScanMin)
		for sb.Len() < size {
			sb.WriteString(pick())
		}
		s := sb.String()
		a, ra := fast.Text(s)
		b, rb := whole.Text(s)
		if a != b || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("text %d (%d bytes): fast and whole-text paths differ:\nfast  %v\nwhole %v\ntext %q", i, len(s), ra, rb, s)
		}
		fa, fb := fast.FindText(s), whole.FindText(s)
		if !reflect.DeepEqual(fa, fb) {
			t.Fatalf("text %d: findings differ: %v vs %v", i, fa, fb)
		}
	}
}
