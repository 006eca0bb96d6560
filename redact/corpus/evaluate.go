package corpus

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// Stats are the counts and scores of one rule family (or of all).
type Stats struct {
	Family string
	// Labels and Found: labelled secrets and how many were fully redacted.
	Labels, Found int
	// Findings and TruePositives: detections and how many hit a label.
	Findings, TruePositives int
}

// Precision is TruePositives/Findings (1 when nothing was found).
func (s Stats) Precision() float64 {
	if s.Findings == 0 {
		return 1
	}
	return float64(s.TruePositives) / float64(s.Findings)
}

// Recall is Found/Labels (1 when nothing was labelled).
func (s Stats) Recall() float64 {
	if s.Labels == 0 {
		return 1
	}
	return float64(s.Found) / float64(s.Labels)
}

// F1 is the harmonic mean of precision and recall.
func (s Stats) F1() float64 {
	p, r := s.Precision(), s.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// Miss is a labelled secret that was not fully redacted.
type Miss struct {
	Case, Type, Value string
}

// FalsePositive is a detection that hit no label.
type FalsePositive struct {
	Case, Rule, Text string
}

// Result is the outcome of Evaluate.
type Result struct {
	Families       []Stats // sorted by family
	Overall        Stats
	Misses         []Miss
	FalsePositives []FalsePositive
	Cases          int
}

// Evaluate runs the redactor's detection over every case. A label counts as
// found when the detections together cover its whole span; a detection is a
// true positive when it overlaps a label. Families are the redact rule
// families; a label's family is that of the rule id in its type.
func Evaluate(r *redact.Redactor, cases []Case) (Result, error) {
	family := map[string]string{}
	for _, ri := range r.Rules() {
		family[ri.ID] = ri.Family
	}
	fam := map[string]*Stats{}
	get := func(f string) *Stats {
		if fam[f] == nil {
			fam[f] = &Stats{Family: f}
		}
		return fam[f]
	}
	res := Result{Overall: Stats{Family: "overall"}, Cases: len(cases)}
	for _, c := range cases {
		var findings []redact.Finding
		switch c.Mode {
		case "json":
			f, err := r.FindJSON([]byte(c.Input))
			if err != nil {
				return Result{}, fmt.Errorf("corpus: case %s: %w", c.ID, err)
			}
			findings = f
		case "text":
			findings = r.FindText(c.Input)
		default:
			return Result{}, fmt.Errorf("corpus: case %s: unknown mode %q", c.ID, c.Mode)
		}
		for _, s := range c.Secrets {
			f, ok := family[s.Type]
			if !ok {
				return Result{}, fmt.Errorf("corpus: case %s: label type %q is no rule id", c.ID, s.Type)
			}
			st := get(f)
			st.Labels++
			res.Overall.Labels++
			if covered(s, findings) {
				st.Found++
				res.Overall.Found++
			} else {
				res.Misses = append(res.Misses, Miss{Case: c.ID, Type: s.Type, Value: s.Value})
			}
		}
		for _, fd := range findings {
			st := get(family[fd.Rule])
			st.Findings++
			res.Overall.Findings++
			hit := false
			for _, s := range c.Secrets {
				if fd.Start < s.End && s.Start < fd.End {
					hit = true
					break
				}
			}
			if hit {
				st.TruePositives++
				res.Overall.TruePositives++
			} else {
				res.FalsePositives = append(res.FalsePositives, FalsePositive{Case: c.ID, Rule: fd.Rule, Text: c.Input[fd.Start:fd.End]})
			}
		}
	}
	for _, s := range fam {
		res.Families = append(res.Families, *s)
	}
	sort.Slice(res.Families, func(i, j int) bool { return res.Families[i].Family < res.Families[j].Family })
	return res, nil
}

// covered reports whether the findings together cover the whole label span.
func covered(s Secret, fs []redact.Finding) bool {
	pos := s.Start
	for progress := true; progress && pos < s.End; {
		progress = false
		for _, f := range fs {
			if f.Start <= pos && f.End > pos {
				pos = f.End
				progress = true
			}
		}
	}
	return pos >= s.End
}

// Print writes the result as a table; verbose adds every miss and false positive.
func (res Result) Print(w io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "family\tlabels\tfound\tfindings\tprecision\trecall\tF1\t\n")
	row := func(s Stats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t\n", s.Family, s.Labels, s.Found, s.Findings, s.Precision(), s.Recall(), s.F1())
	}
	for _, s := range res.Families {
		row(s)
	}
	row(res.Overall)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	fmt.Fprintf(w, "%d documents, %d labelled secrets, %d missed, %d false positives\n", res.Cases, res.Overall.Labels, len(res.Misses), len(res.FalsePositives))
	if verbose {
		for _, m := range res.Misses {
			fmt.Fprintf(w, "MISS %s %s %.80q\n", m.Case, m.Type, m.Value)
		}
		for _, f := range res.FalsePositives {
			fmt.Fprintf(w, "FP   %s %s %.80q\n", f.Case, f.Rule, f.Text)
		}
	}
	return nil
}
