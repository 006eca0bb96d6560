package corpus

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// Labels of an outside case.
const (
	LabelSecret   = "example"  // the text holds a secret of its family
	LabelNegative = "negative" // the text holds none
	// LabelIdentifier marks an example of a source rule that finds
	// identifiers, not secrets (ARNs, bucket names, OAuth client ids, user
	// names): ordinary catalog data, left out of the scores.
	LabelIdentifier = "identifier"
)

// OutsideCase is one string of the outside corpus: material the team did not
// write (testdata/redact/outside, see its NOTICE), labelled as a whole.
type OutsideCase struct {
	ID     string `json:"id"`
	Family string `json:"family"` // the source's family (rule file), not a redact family
	Rule   string `json:"rule"`   // the source's rule id
	Name   string `json:"name"`   // the source's rule name
	Label  string `json:"label"`  // LabelSecret or LabelNegative
	Text   string `json:"text"`
}

// WriteOutside writes cases as JSON lines.
func WriteOutside(w io.Writer, cases []OutsideCase) error { return writeLines(w, cases) }

// ReadOutside reads JSON lines written by WriteOutside.
func ReadOutside(r io.Reader) ([]OutsideCase, error) {
	return readLines(r, "", func(c OutsideCase) error {
		if c.Label != LabelSecret && c.Label != LabelNegative && c.Label != LabelIdentifier {
			return fmt.Errorf("unknown label %q", c.Label)
		}
		return nil
	})
}

// Doc is one document scored by Score: a whole-text example, a negative, or
// a document with labelled spans.
type Doc struct {
	ID     string
	Family string // the family of a whole-text example or a negative; "" for span documents
	Mode   string // "json" or "text": how backstage-mcp reads it
	Input  string
	// Spans are labelled secrets with their family in Type. A span counts as
	// found only when the hits together cover all of it.
	Spans []Secret
	// Whole marks an example labelled as a whole (the source gives no span):
	// found when anything in it is detected.
	Whole bool
}

// Negative reports whether the document holds no secret.
func (d Doc) Negative() bool { return !d.Whole && len(d.Spans) == 0 }

// Hit is one detection in a document, with the detector's family.
type Hit struct {
	Start, End int
	Family     string
}

// Row is the score of one family.
type Row struct {
	Family string
	// Labels and Found: labelled secrets (spans or whole examples) and how many were found.
	Labels, Found int
	// TP and FP: hits that touch a label and hits that touch none.
	TP, FP int
	// Negatives and Flagged: negative documents, and how many had any hit.
	Negatives, Flagged int
}

// Recall is Found/Labels (1 with no labels).
func (r Row) Recall() float64 {
	if r.Labels == 0 {
		return 1
	}
	return float64(r.Found) / float64(r.Labels)
}

// Precision is TP/(TP+FP) (1 with no hits).
func (r Row) Precision() float64 {
	if r.TP+r.FP == 0 {
		return 1
	}
	return float64(r.TP) / float64(r.TP+r.FP)
}

// FPRate is Flagged/Negatives (0 with no negatives).
func (r Row) FPRate() float64 {
	if r.Negatives == 0 {
		return 0
	}
	return float64(r.Flagged) / float64(r.Negatives)
}

// Table is a scored corpus: one row per family and the overall row.
type Table struct {
	Rows    []Row
	Overall Row
	// Missed lists the ids of documents with a label that was not found.
	Missed []string
	// FalseHits lists "id: text" of hits that touch no label.
	FalseHits []string
}

// Score scores hits (hits[i] belongs to docs[i]). A hit that touches no label
// counts against the document's family, or against its own family in a span
// document.
func Score(docs []Doc, hits [][]Hit) Table {
	rows := map[string]*Row{}
	get := func(f string) *Row {
		if rows[f] == nil {
			rows[f] = &Row{Family: f}
		}
		return rows[f]
	}
	var t Table
	for i, d := range docs {
		hs := hits[i]
		switch {
		case d.Whole:
			r := get(d.Family)
			r.Labels++
			if len(hs) > 0 {
				r.Found++
				r.TP += len(hs)
			} else {
				t.Missed = append(t.Missed, d.ID)
			}
		case d.Negative():
			r := get(d.Family)
			r.Negatives++
			r.FP += len(hs)
			if len(hs) > 0 {
				r.Flagged++
				for _, h := range hs {
					t.FalseHits = append(t.FalseHits, d.ID+": "+clip(d.Input, h))
				}
			}
		default:
			missed := false
			for _, s := range d.Spans {
				r := get(s.Type)
				r.Labels++
				if coveredBy(s.Start, s.End, hs) {
					r.Found++
				} else {
					missed = true
				}
			}
			if missed {
				t.Missed = append(t.Missed, d.ID)
			}
			for _, h := range hs {
				fam := ""
				for _, s := range d.Spans {
					if h.Start < s.End && s.Start < h.End {
						fam = s.Type
						break
					}
				}
				if fam != "" {
					get(fam).TP++
					continue
				}
				fam = h.Family
				if d.Family != "" {
					fam = d.Family
				}
				get(fam).FP++
				t.FalseHits = append(t.FalseHits, d.ID+": "+clip(d.Input, h))
			}
		}
	}
	t.Overall.Family = "overall"
	for _, r := range rows {
		t.Rows = append(t.Rows, *r)
		t.Overall.Labels += r.Labels
		t.Overall.Found += r.Found
		t.Overall.TP += r.TP
		t.Overall.FP += r.FP
		t.Overall.Negatives += r.Negatives
		t.Overall.Flagged += r.Flagged
	}
	sort.Slice(t.Rows, func(i, j int) bool { return t.Rows[i].Family < t.Rows[j].Family })
	return t
}

func clip(s string, h Hit) string {
	st, en := max(0, min(h.Start, len(s))), max(0, min(h.End, len(s)))
	if en-st > 60 {
		en = st + 60
	}
	return fmt.Sprintf("%q", s[st:en])
}

func coveredBy(start, end int, hs []Hit) bool {
	pos := start
	for progress := true; progress && pos < end; {
		progress = false
		for _, h := range hs {
			if h.Start <= pos && h.End > pos {
				pos = h.End
				progress = true
			}
		}
	}
	return pos >= end
}

// OutsideDocs turns outside cases into documents read as text, leaving out
// identifier examples and the negatives named in unscored (see Unscored).
func OutsideDocs(cases []OutsideCase, unscored map[string]string) []Doc {
	docs := make([]Doc, 0, len(cases))
	for _, c := range cases {
		if _, ok := unscored[c.ID]; c.Label == LabelIdentifier || ok {
			continue
		}
		docs = append(docs, Doc{ID: c.ID, Family: c.Family, Mode: "text", Input: c.Text, Whole: c.Label == LabelSecret})
	}
	return docs
}

// wrongNegatives are negative examples whose label the source's own rule
// text contradicts, or that the source's maintained successor names as a
// secret with a rule of its own, each with the reason. Listed one by one in
// testdata/redact/outside/NOTES.md; TestWrongNegativesReasons checks the
// successor's rule against the text.
var wrongNegatives = map[string]string{
	"np.postgres.1/negative/0": `the rule file says "this handles some cases of postgres URIs, but not the full generality of them": ` +
		`an IPv6 host is a case it does not handle, and the string holds the same user:secret as its examples`,
	"np.postgres.1/negative/1": `the rule file says "this handles some cases of postgres URIs, but not the full generality of them": ` +
		`password=secret in the query is a case it does not handle, and the string holds the same secret as its examples`,
	// np.npm.1 names only the npm_ form; npm's older tokens are UUIDs.
	"np.npm.1/negative/0": `Kingfisher, which continues Nosey Parker's rule set, names this form as a secret: ` +
		`its rule ` + npmLegacyRule + ` (a UUID after _authToken or NPM_TOKEN, npm's older token form) matches the text`,
}

// npmLegacyRule is the Kingfisher rule that names a UUID under NPM_TOKEN a
// secret (testdata/redact/outside/kingfisher-rules.jsonl).
const npmLegacyRule = "kingfisher.npm.2"

// Unscored returns, for the negative examples left out of the scores of
// every detector alike, the reason: a pattern of another rule of the source
// matches the text (SourceFlagged: the source's own rule set reports a
// secret there, so "holds none" is not the source's word), or a label that
// the source's rule text contradicts.
func Unscored(cases []OutsideCase, rules []SourceRule) (map[string]string, error) {
	flagged, err := SourceFlagged(cases, rules)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for id, by := range flagged {
		out[id] = "the source's own rule set finds a secret in it: " + strings.Join(by, ", ")
	}
	for _, c := range cases {
		if why, ok := wrongNegatives[c.ID]; ok && c.Label == LabelNegative {
			out[c.ID] = why
		}
	}
	return out, nil
}

// OwnDocs turns cases of the generated corpus into documents whose span
// labels carry the redact family of their rule.
func OwnDocs(r *redact.Redactor, cases []Case) ([]Doc, error) {
	family := map[string]string{}
	for _, ri := range r.Rules() {
		family[ri.ID] = ri.Family
	}
	docs := make([]Doc, len(cases))
	for i, c := range cases {
		d := Doc{ID: c.ID, Mode: c.Mode, Input: c.Input}
		if len(c.Secrets) == 0 {
			d.Family = "(no secret)"
		}
		for _, s := range c.Secrets {
			f, ok := family[s.Type]
			if !ok {
				return nil, fmt.Errorf("corpus: case %s: label type %q is no rule id", c.ID, s.Type)
			}
			s.Type = f
			d.Spans = append(d.Spans, s)
		}
		docs[i] = d
	}
	return docs, nil
}

// Detect runs the redactor over every document, the way the server reads
// it: JSON documents with their keys as context, text as text.
func Detect(r *redact.Redactor, docs []Doc) ([][]Hit, error) {
	family := map[string]string{}
	for _, ri := range r.Rules() {
		family[ri.ID] = ri.Family
	}
	out := make([][]Hit, len(docs))
	for i, d := range docs {
		var fs []redact.Finding
		switch d.Mode {
		case "json":
			f, err := r.FindJSON([]byte(d.Input))
			if err != nil {
				return nil, fmt.Errorf("corpus: %s: %w", d.ID, err)
			}
			fs = f
		case "text":
			fs = r.FindText(d.Input)
		default:
			return nil, fmt.Errorf("corpus: %s: unknown mode %q", d.ID, d.Mode)
		}
		for _, f := range fs {
			out[i] = append(out[i], Hit{Start: f.Start, End: f.End, Family: family[f.Rule]})
		}
	}
	return out, nil
}

// PrintSideBySide writes one line per family with the figures of each named
// detector (tables[k] belongs to names[k]).
func PrintSideBySide(w io.Writer, names []string, tables []Table) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "family\tlabels\tneg")
	for _, n := range names {
		fmt.Fprintf(tw, "\t%s recall\tprecision\tneg flagged", n)
	}
	fmt.Fprint(tw, "\t\n")
	fams := map[string]bool{}
	for _, t := range tables {
		for _, r := range t.Rows {
			fams[r.Family] = true
		}
	}
	var order []string
	for f := range fams {
		order = append(order, f)
	}
	sort.Strings(order)
	line := func(fam string, pick func(Table) Row) {
		first := pick(tables[0])
		for _, t := range tables[1:] {
			if r := pick(t); r.Labels > first.Labels || r.Negatives > first.Negatives {
				first.Labels, first.Negatives = max(first.Labels, r.Labels), max(first.Negatives, r.Negatives)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d", fam, first.Labels, first.Negatives)
		for _, t := range tables {
			r := pick(t)
			rec := "-"
			if r.Labels > 0 {
				rec = fmt.Sprintf("%.3f", r.Recall())
			}
			fmt.Fprintf(tw, "\t%s\t%.3f\t%d", rec, r.Precision(), r.Flagged)
		}
		fmt.Fprint(tw, "\t\n")
	}
	for _, f := range order {
		line(f, func(t Table) Row {
			for _, r := range t.Rows {
				if r.Family == f {
					return r
				}
			}
			return Row{Family: f}
		})
	}
	line("OVERALL", func(t Table) Row { return t.Overall })
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	return nil
}

// familyOfGitleaksRule maps a gitleaks rule id to the nearest redact family,
// so that its false hits on a span corpus land in a comparable row.
func familyOfGitleaksRule(id string) string {
	for _, m := range [...]struct{ prefix, family string }{
		{"aws", "aws"}, {"gcp", "gcp"}, {"google", "gcp"}, {"azure", "azure"}, {"github", "github"}, {"gitlab", "gitlab"},
		{"slack", "slack"}, {"stripe", "payment"}, {"square", "payment"}, {"shopify", "payment"}, {"twilio", "messaging"},
		{"sendgrid", "messaging"}, {"mailgun", "messaging"}, {"mailchimp", "messaging"}, {"telegram", "messaging"},
		{"discord", "messaging"}, {"npm", "registry"}, {"pypi", "registry"}, {"nuget", "registry"}, {"rubygems", "registry"},
		{"artifactory", "registry"}, {"pulumi", "registry"}, {"datadog", "observability"}, {"new-relic", "observability"},
		{"sentry", "observability"}, {"grafana", "observability"}, {"dynatrace", "observability"}, {"openai", "ai"},
		{"anthropic", "ai"}, {"huggingface", "ai"}, {"hashicorp", "vault"}, {"vault", "vault"}, {"doppler", "vault"},
		{"age", "vault"}, {"jwt", "jwt"}, {"private-key", "private-key"}, {"generic", "generic"}, {"curl", "generic"},
	} {
		if strings.HasPrefix(id, m.prefix) {
			return m.family
		}
	}
	return "other"
}

// GitleaksFamily exposes the rule-to-family mapping to the report command.
func GitleaksFamily(id string) string { return familyOfGitleaksRule(id) }
