package tools

import "time"

// Prompt is one ready-made workflow: an argument naming an entity and the
// instructions that tell the agent which tools to use. Prompts embed no
// catalog data (only the caller's own argument), so they need no catalog
// call; the tools they name do. The server registers them (and passes
// their text through egress); they live beside the tools so that the
// question suite follows them on the same catalogs and checks the same
// facts as the tools' own paths.
type Prompt struct {
	Name, Title, Description string
	// Kind is the default kind of the ref argument ("" for any).
	Kind string
	// Since marks a prompt whose one argument is an optional "since" (how
	// far back, as catalog_list_changes reads it) instead of a required
	// entity ref.
	Since bool
	// Tools the workflow uses; the server lists the prompt only when all
	// are granted.
	Tools []string
	// Text renders the instructions for a parsed ref (or, with Since, the
	// checked "since" argument; "" for the default).
	Text func(arg string) string
}

// CheckSince reports whether s is a "since" argument catalog_list_changes
// accepts: a duration such as 24h or 7d, or an RFC 3339 time.
func CheckSince(s string) error {
	_, err := parseSince(s, time.Now())
	return err
}

// Prompts returns the shipped prompts.
func Prompts() []Prompt {
	return []Prompt{
		{
			Name: "who-owns", Title: "Who owns this and how do I reach them",
			Description: "Find the owning team of a catalog entity, its members and how to contact them.",
			Tools:       []string{"catalog_find_owner", "catalog_get_entity"},
			Text: func(ref string) string {
				return "Find out who owns " + ref + " in the Backstage catalog and how to reach them.\n" +
					"1. Call catalog_find_owner with ref " + ref + ": it gives the entity's own contacts (chat channel, on-call ids), the owning group or user, its members, parent groups, e-mail, contacts and links.\n" +
					"2. If the owner has no e-mail or contacts, call catalog_find_owner on its parent groups (they are listed) for theirs.\n" +
					"Answer with the team, two or three people to ask first, and the best channel, and say what the catalog did not tell."
			},
		},
		{
			Name: "blast-radius", Title: "Blast radius of a change",
			Description: "What depends on an entity, directly and up to three hops away, and whom to tell.",
			Tools:       []string{"catalog_find_dependents"},
			Text: func(ref string) string {
				return "Assess the blast radius of a change to " + ref + ".\n" +
					"1. Call catalog_find_dependents with ref " + ref + " (depth 3 is the default). It lists every entity that depends on it, " +
					"directly (dependsOn) or by consuming an API it provides, hop by hop, each with its owner and contacts, and the owning teams with e-mail and chat or on-call contacts.\n" +
					"Answer with the dependents grouped by hop distance, production ones first, and the teams to tell with how to reach them; " +
					"say that entities you may not see are not listed."
			},
		},
		{
			Name: "onboard-system", Title: "Onboard me to a system", Kind: "system",
			Description: "A tour of a system: its components, APIs, resources, owners and where to read more.",
			Tools:       []string{"catalog_get_entity", "catalog_search_entities", "catalog_find_owner"},
			Text: func(ref string) string {
				return "Onboard me to the system " + ref + ".\n" +
					"1. Call catalog_get_entity with ref " + ref + " for its description, owner, domain and links.\n" +
					"2. Call catalog_search_entities with system " + ref + " and limit 100 to list its parts (components, APIs, resources) in one call.\n" +
					"3. The summaries already name what each part depends on and which APIs it provides and consumes; call catalog_get_entity on a part for its links, repository, docs and on-call.\n" +
					"4. Call catalog_find_owner with ref " + ref + " to learn who to ask and how to reach them.\n" +
					"Answer with a short overview, the parts by kind with one line each, the owning team and the links worth reading first."
			},
		},
		{
			Name: "what-changed", Title: "What changed in the catalog", Since: true,
			Description: "What was added to, changed in or removed from the catalog recently (catalog mirror mode).",
			Tools:       []string{"catalog_list_changes"},
			Text: func(since string) string {
				if since == "" {
					since = "7d"
				}
				return "Find out what changed in the Backstage catalog (since " + since + ").\n" +
					"1. Call catalog_list_changes with since " + since + ". It lists every entity added, changed or removed since then that you may see, newest first, with the time the server saw each change; add kind to narrow it (Component, API, ...).\n" +
					"2. For a changed entity whose change matters to the question, call catalog_get_entity on its ref for what it is now (lifecycle, owner, system).\n" +
					"Answer with the changes grouped as added, changed and removed, and say from when the feed knows changes if the answer says so."
			},
		},
		{
			Name: "review-api", Title: "Review an API", Kind: "api",
			Description: "Review an API's definition for consistency and breaking-change risk, with its providers and consumers.",
			Tools:       []string{"catalog_get_api_definition", "catalog_find_dependents", "catalog_get_entity", "catalog_find_owner"},
			Text: func(ref string) string {
				return "Review the API " + ref + ".\n" +
					"1. Call catalog_get_api_definition with ref " + ref + " (raise maxBytes if the notice says it was cut).\n" +
					"2. Call catalog_find_dependents with ref " + ref + " and depth 1: its consumers, their owners and how to reach them.\n" +
					"3. Call catalog_get_entity with ref " + ref + " for the component that provides it, its owner and system.\n" +
					"4. Call catalog_find_owner with ref " + ref + " for the owning team and its contacts.\n" +
					"Review naming, error responses, pagination, versioning and authentication; list changes that would break its consumers, and who to tell."
			},
		},
	}
}
