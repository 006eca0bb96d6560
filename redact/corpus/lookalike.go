package corpus

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxLookalikeFile bounds one file of the look-alike corpus (decompressed).
const maxLookalikeFile = 16 << 20

// LookalikeDocs reads the look-alike corpus (testdata/redact/lookalike):
// public text full of strings shaped like secrets that are none — OpenAPI
// definitions, Kubernetes manifests, Backstage's example catalogs and
// app-config, lockfiles with integrity hashes, go.sum, commit ids, UUIDs,
// base64 images. Every file is a negative document; a ".json" file is read
// as JSON (with its keys), any other as text. A ".gz" file is decompressed.
func LookalikeDocs(dir string) ([]Doc, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Base(p) != "NOTICE" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	sort.Strings(paths)
	var docs []Doc
	for _, p := range paths {
		b, err := readMaybeGzip(p)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(p, ".gz")
		mode := "text"
		if strings.HasSuffix(name, ".json") {
			mode = "json"
		}
		rel, _ := filepath.Rel(dir, p)
		docs = append(docs, Doc{ID: rel, Family: "lookalike", Mode: mode, Input: string(b)})
	}
	return docs, nil
}

func readMaybeGzip(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("corpus: %s: %w", p, err)
		}
		defer func() { _ = z.Close() }()
		r = z
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLookalikeFile+1))
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", p, err)
	}
	if len(b) > maxLookalikeFile {
		return nil, fmt.Errorf("corpus: %s: larger than %d bytes", p, maxLookalikeFile)
	}
	return b, nil
}

// LookalikeTokens counts the secret-shaped strings of a text: runs of 16 or
// more characters of a token alphabet ([A-Za-z0-9+/=_.~-]) holding a letter
// and a digit. They are the negatives a redactor could mistake for secrets.
func LookalikeTokens(s string) int {
	n := 0
	b := []byte(s)
	for i := 0; i < len(b); {
		if !tokenByte(b[i]) {
			i++
			continue
		}
		j, letter, digit := i, false, false
		for j < len(b) && tokenByte(b[j]) {
			c := b[j]
			letter = letter || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			digit = digit || c >= '0' && c <= '9'
			j++
		}
		if j-i >= 16 && letter && digit {
			n++
		}
		i = j
	}
	return n
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("+/=_.~-"), c) >= 0
}
