package review

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Diff lists what changed between two reports.
type Diff struct {
	OldPolicy string   `json:"oldPolicy"`
	NewPolicy string   `json:"newPolicy"`
	Catalog   []string `json:"catalog"`
	Widened   []string `json:"widened"`
	Narrowed  []string `json:"narrowed"`
}

// Compare compares an earlier report with a new one: tools added, counts
// up, masks removed, roles newly reaching everything and new roles widen;
// the opposites narrow. Changes of the catalog's own counts are listed
// apart, since they move the role counts too.
func Compare(old, cur *Report) *Diff {
	d := &Diff{OldPolicy: old.Policy, NewPolicy: cur.Policy, Catalog: []string{}, Widened: []string{}, Narrowed: []string{}}
	if old.Catalog.Entities != cur.Catalog.Entities {
		d.Catalog = append(d.Catalog, fmt.Sprintf("entities %d → %d", old.Catalog.Entities, cur.Catalog.Entities))
	}
	for _, k := range unionKeys(old.Catalog.Kinds, cur.Catalog.Kinds) {
		if a, b := old.Catalog.Kinds[k], cur.Catalog.Kinds[k]; a != b {
			d.Catalog = append(d.Catalog, fmt.Sprintf("%s %d → %d", k, a, b))
		}
	}
	oldRoles := map[string]Role{}
	for _, r := range old.Roles {
		oldRoles[r.Name] = r
	}
	seen := map[string]bool{}
	for _, r := range cur.Roles {
		seen[r.Name] = true
		o, ok := oldRoles[r.Name]
		if !ok {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: new role (tools %s; %d entities visible)", r.Name, listOrNone(r.Tools), r.Visible))
			continue
		}
		added, removed := setDiff(o.Tools, r.Tools)
		for _, t := range added {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: tool %s added", r.Name, t))
		}
		for _, t := range removed {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: tool %s removed", r.Name, t))
		}
		for _, k := range unionKeys(o.Entities, r.Entities) {
			a, b := o.Entities[k], r.Entities[k]
			switch {
			case b > a:
				d.Widened = append(d.Widened, fmt.Sprintf("role %s: %s %d → %d (+%d)", r.Name, k, a, b, b-a))
			case b < a:
				d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: %s %d → %d (-%d)", r.Name, k, a, b, a-b))
			}
		}
		madd, mrem := setDiff(o.Masks, r.Masks)
		for _, m := range mrem {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: field mask %q removed", r.Name, m))
		}
		for _, m := range madd {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: field mask %q added", r.Name, m))
		}
		if r.ReachesEverything && !o.ReachesEverything {
			d.Widened = append(d.Widened, fmt.Sprintf("role %s: now reaches EVERYTHING", r.Name))
		}
		if !r.ReachesEverything && o.ReachesEverything {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: no longer reaches everything", r.Name))
		}
	}
	for _, r := range old.Roles {
		if !seen[r.Name] {
			d.Narrowed = append(d.Narrowed, fmt.Sprintf("role %s: removed", r.Name))
		}
	}
	return d
}

// setDiff returns, sorted, what cur has that old lacks and the reverse.
func setDiff(old, cur []string) (added, removed []string) {
	o, c := map[string]bool{}, map[string]bool{}
	for _, x := range old {
		o[x] = true
	}
	for _, x := range cur {
		c[x] = true
		if !o[x] {
			added = append(added, x)
		}
	}
	for _, x := range old {
		if !c[x] {
			removed = append(removed, x)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys(a, b map[string]int) []string {
	keys := append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...)
	slices.Sort(keys)
	return slices.Compact(keys)
}
