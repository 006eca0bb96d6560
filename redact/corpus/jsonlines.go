package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// writeLines writes each value as one JSON line, HTML characters as they
// are.
func writeLines[T any](w io.Writer, vs []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("corpus: %w", err)
		}
	}
	return nil
}

// readLines reads JSON lines, skipping empty ones; check, when not nil,
// vets each value. Errors name the line, after what ("rules ", or "").
func readLines[T any](r io.Reader, what string, check func(T) error) ([]T, error) {
	var out []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		err := json.Unmarshal(sc.Bytes(), &v)
		if err == nil && check != nil {
			err = check(v)
		}
		if err != nil {
			return nil, fmt.Errorf("corpus: %sline %d: %w", what, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	return out, nil
}
