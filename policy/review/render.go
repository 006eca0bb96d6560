package review

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// String renders the report as aligned tables; policyFile names the policy
// in the heading.
func (r *Report) String(policyFile string) string {
	var b strings.Builder
	kinds := slices.Sorted(maps.Keys(r.Catalog.Kinds))
	fmt.Fprintf(&b, "policy %s (sha256 %s); catalog: %d entities", policyFile, r.Policy, r.Catalog.Entities)
	if r.Catalog.Truncated {
		b.WriteString(" (TRUNCATED)")
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	head := []string{"ROLE", "TOOLS"}
	for _, k := range kinds {
		head = append(head, strings.ToUpper(k))
	}
	head = append(head, "MASKS", "FLAGS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, gr := range r.Roles {
		row := []string{gr.Name, fmt.Sprintf("%d/%d", len(gr.Tools), len(r.Tools))}
		for _, k := range kinds {
			row = append(row, fmt.Sprintf("%d/%d", gr.Entities[k], r.Catalog.Kinds[k]))
		}
		row = append(row, fmt.Sprint(len(gr.Masks)), strings.Join(gr.flags(), ","))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	for _, gr := range r.Roles {
		fmt.Fprintf(&b, "\nrole %s", gr.Name)
		if f := gr.flags(); len(f) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(f, ", "))
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  subjects: %s\n", listOrNone(gr.Subjects))
		fmt.Fprintf(&b, "  tools:    %s\n", listOrNone(gr.Tools))
		fmt.Fprintf(&b, "  visible:  %d of %d entities\n", gr.Visible, r.Catalog.Entities)
		fmt.Fprintf(&b, "  masks:    %s\n", listOrNone(gr.Masks))
		for _, n := range gr.Notes {
			fmt.Fprintf(&b, "  note:     %s\n", n)
		}
	}
	return b.String()
}

// flags names the role's flags for the table.
func (gr Role) flags() []string {
	var f []string
	if gr.ReachesEverything {
		f = append(f, "EVERYTHING")
	}
	if gr.OwnerScoped {
		f = append(f, "OWNER-SCOPED")
	}
	return f
}

// String renders the diff for a terminal.
func (d *Diff) String() string {
	var b strings.Builder
	if d.OldPolicy == d.NewPolicy {
		fmt.Fprintf(&b, "policy: unchanged (sha256 %s)\n", d.NewPolicy)
	} else {
		fmt.Fprintf(&b, "policy: sha256 %s → %s\n", d.OldPolicy, d.NewPolicy)
	}
	if len(d.Catalog) > 0 {
		fmt.Fprintf(&b, "catalog: %s\n", strings.Join(d.Catalog, "; "))
	} else {
		b.WriteString("catalog: same entity counts\n")
	}
	for _, w := range d.Widened {
		fmt.Fprintf(&b, "WIDENED   %s\n", w)
	}
	for _, n := range d.Narrowed {
		fmt.Fprintf(&b, "narrowed  %s\n", n)
	}
	fmt.Fprintf(&b, "%d widened, %d narrowed\n", len(d.Widened), len(d.Narrowed))
	return b.String()
}
