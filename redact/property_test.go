package redact_test

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
)

// TestIdempotence checks that redacting already-redacted output changes
// nothing, over the whole corpus and random mutations of it.
func TestIdempotence(t *testing.T) {
	r := newRedactor(t)
	rng := rand.New(rand.NewPCG(3, 4))
	cases := corpus.Generate(corpus.DefaultSeed)
	for i, c := range cases {
		inputs := []string{c.Input}
		if i%3 == 0 && c.Mode == "text" {
			// Random splices of two documents make new neighbourhoods.
			o := cases[rng.IntN(len(cases))].Input
			inputs = append(inputs, c.Input[:rng.IntN(len(c.Input)+1)]+o[rng.IntN(len(o)+1):])
		}
		for _, in := range inputs {
			if c.Mode == "json" && json.Valid([]byte(in)) {
				once, _, err := r.JSON([]byte(in))
				if err != nil {
					t.Fatalf("%s: %v", c.ID, err)
				}
				twice, rep, err := r.JSON(once)
				if err != nil || string(twice) != string(once) || rep.Total() != 0 || rep.Invisible != 0 {
					t.Fatalf("%s: JSON not idempotent (%v, %v)\n%s\n%s", c.ID, err, rep, once, twice)
				}
				continue
			}
			once, _ := r.Text(in)
			twice, rep := r.Text(once)
			if twice != once || rep.Total() != 0 {
				t.Fatalf("%s: Text not idempotent %v\n%q\n%q", c.ID, rep.Counts, once, twice)
			}
		}
	}
}

func FuzzText(f *testing.F) {
	for _, c := range corpus.Generate(corpus.DefaultSeed)[:80] {
		if c.Mode == "text" {
			f.Add(c.Input)
		}
	}
	f.Add("postgres://u:p%40ss@h/db?password=x&token=" + strings.Repeat("a1B2", 6))
	f.Add(`-----BEGIN RSA PRIVATE KEY-----\nMIIE\u00` + "\xff")
	r := newRedactor(f)
	f.Fuzz(func(t *testing.T, s string) {
		once, _ := r.Text(s)
		twice, rep := r.Text(once)
		if twice != once || rep.Total() != 0 {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		for _, fd := range r.FindText(s) {
			if fd.Start < 0 || fd.End > len(s) || fd.Start >= fd.End {
				t.Fatalf("bad finding %+v for %q", fd, s)
			}
		}
	})
}

func FuzzJSON(f *testing.F) {
	for _, c := range corpus.Generate(corpus.DefaultSeed)[:40] {
		f.Add([]byte(c.Input))
	}
	f.Add([]byte(`{"password":"Zq7xP9mK2vL8","a":[1,-0.5e+3,true,null,"\u200b\ud83d\ude00"]}`))
	f.Add([]byte(`"\ud800"`))
	r := newRedactor(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, _, err := r.JSON(doc)
		valid := json.Valid(doc)
		if valid && err != nil {
			t.Fatalf("valid JSON rejected: %v", err)
		}
		if !valid && err == nil {
			t.Fatalf("invalid JSON accepted: %q", doc)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output not valid JSON: %q -> %q", doc, out)
		}
		again, rep, err := r.JSON(out)
		if err != nil || string(again) != string(out) || rep.Total() != 0 {
			t.Fatalf("not idempotent: %q -> %q -> %q", doc, out, again)
		}
	})
}

// FuzzCorpusSecretsDoNotSurvive injects corpus secrets into fuzzed
// surroundings and checks that provider-prefixed ones never survive.
func FuzzCorpusSecretsDoNotSurvive(f *testing.F) {
	var secrets []string
	for _, c := range corpus.Generate(corpus.DefaultSeed) {
		for _, s := range c.Secrets {
			if strings.HasPrefix(s.Type, "github-") || strings.HasPrefix(s.Type, "slack-bot") || s.Type == "npm-token" ||
				s.Type == "stripe-secret-key" || s.Type == "jwt" || strings.HasPrefix(s.Type, "gitlab-") || s.Type == "anthropic-api-key" {
				secrets = append(secrets, s.Value)
			}
		}
	}
	f.Add("before ", " after", 0)
	f.Add(`{"x":"`, `"}`, 5)
	f.Add("\u202e", "\u200b", 9)
	r := newRedactor(f)
	f.Fuzz(func(t *testing.T, pre, post string, i int) {
		if i < 0 {
			i = -i
		}
		sec := secrets[i%len(secrets)]
		// A secret glued to word characters is a different string; keep a separator.
		out, _ := r.Text(pre + " " + sec + " " + post)
		if strings.Contains(out, sec) {
			t.Fatalf("secret survived in %q", out)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	r := newRedactor(t)
	cases := corpus.Generate(corpus.DefaultSeed)[:60]
	done := make(chan string, 4)
	for w := 0; w < 4; w++ {
		go func() {
			var b strings.Builder
			for _, c := range cases {
				if c.Mode == "json" {
					out, _, err := r.JSON([]byte(c.Input))
					if err != nil {
						b.WriteString(err.Error())
					}
					b.Write(out)
				} else {
					out, _ := r.Text(c.Input)
					b.WriteString(out)
				}
			}
			done <- b.String()
		}()
	}
	first := <-done
	for w := 1; w < 4; w++ {
		if got := <-done; got != first {
			t.Fatal("concurrent calls gave different results")
		}
	}
}
