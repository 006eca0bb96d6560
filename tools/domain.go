package tools

import (
	"context"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// domainFields is what inheritDomains reads of a system.
var domainFields = []string{"spec.domain"}

// inheritDomains gives each summary that names a system but no domain its
// system's domain, as the caller sees that system: the system must be
// visible (a summary names only visible systems) and its domain too (the
// name of a hidden domain is pruned like any other). One by-refs request
// reads every system named, whatever the number of summaries. Systems and
// domains keep what they carry themselves.
func (d *Deps) inheritDomains(ctx context.Context, sums []Summary) error {
	var refs []string
	for i := range sums {
		s := &sums[i]
		if !s.inherits() {
			continue
		}
		known := false
		for _, r := range refs {
			known = known || strings.EqualFold(r, s.System)
		}
		if !known {
			if refs == nil {
				refs = make([]string, 0, len(sums))
			}
			refs = append(refs, strings.ToLower(s.System))
		}
	}
	if len(refs) == 0 {
		return nil
	}
	raws, err := d.Catalog.GetByRefs(ctx, refs, d.projection(ctx, domainFields, nil))
	if err != nil {
		return err
	}
	// Each system is decided and masked as admit does; it is not
	// redacted here: the one value taken from it, a domain's name, leaves
	// inside the answer, whose every string the server's egress redacts.
	acc := accessFrom(ctx)
	systems := make([]entity, 0, len(raws))
	for _, raw := range raws {
		if raw == nil {
			continue
		}
		m, err := catalog.DecodeObject(raw)
		if err != nil || m == nil || !acc.Visible(m) {
			continue
		}
		if m = acc.Mask(m); m != nil {
			systems = append(systems, entity{m: m, ref: entityRef(m)})
		}
	}
	if err := d.pruneNames(ctx, systems); err != nil {
		return err
	}
	for _, e := range systems {
		if str(e.m, "spec", "domain") == "" {
			continue
		}
		dom := refFieldOf(e.m, nil, "", "domain", "domain")
		for i := range sums {
			if s := &sums[i]; s.inherits() && strings.EqualFold(s.System, e.ref) {
				s.Domain = dom
			}
		}
	}
	return nil
}

// inherits reports whether the summary takes its system's domain: it
// names a system and no domain, and is neither a system nor a domain.
func (s *Summary) inherits() bool {
	if s.Domain != "" || s.System == "" {
		return false
	}
	kind, _, _ := strings.Cut(s.Ref, ":")
	return !strings.EqualFold(kind, "system") && !strings.EqualFold(kind, "domain")
}
