// Package policy makes the authorization decisions of backstage-mcp: which
// tools a user+agent pair may call, which catalog entities it may see and
// which fields of those entities are masked. It is pure: no I/O, no network,
// standard library only, so a reviewer can read it in one sitting.
//
// The model (see doc.md next to this file for the admin guide) is a list of
// roles. A role is bound to subjects (IdP groups, token claims, Backstage
// groups, users, agent client IDs) and grants tools (by name or by scope),
// entity rules written in Backstage's permission-rule vocabulary
// (IS_ENTITY_KIND, IS_ENTITY_OWNER, HAS_ANNOTATION, HAS_LABEL, HAS_METADATA,
// HAS_SPEC, IN_NAMESPACE combined with allOf/anyOf/not), field masks and a
// rate class.
//
// Semantics, in one place:
//
//   - Default deny: a subject that matches no role gets nothing.
//   - Deny overrides allow, across all matched roles.
//   - A subject sees no entities unless some matched role has an entity allow rule.
//   - A tool is callable only if a matched role grants it (by name or scope)
//     AND the agent's token scopes, mapped through the policy's scopes table,
//     include the tool's scope. The agent can never gain what its user lacks.
//   - User entities are visible only with the catalog:read:users scope.
//   - Unauthenticated subjects match only roles bound with anonymous: true.
//
// Typical use, once per tool call:
//
//	g := pol.Grant(subject)
//	if d := g.AllowsTool("catalog_search_entities"); !d.Allowed { ... }
//	clauses, empty := policy.Combine(userClauses, g.Pushdown())
//	if empty { return nothing }  // without calling Backstage
//	for each clause: param, err := clause.Encode() → one filter= query parameter
//	for each fetched entity e:
//	    if !g.Entity(e).Allowed { skip }           // the post-filter is always required
//	    masked, n := g.MaskFields(e)
//
// The post-fetch re-check (Grant.Entity) is the authority. The pushdown is an
// optimisation that keeps pages full: it is always a superset of what the
// policy allows, so a page may come back shorter than requested after the
// post-filter removes entities the pushdown could not express (deny rules,
// not, keys Backstage filters cannot carry). Callers must not treat a short
// page as the last page; they continue with the cursor Backstage returned.
package policy
