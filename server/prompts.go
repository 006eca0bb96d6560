package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// catalogPrompt is one ready-made workflow: an argument naming an entity
// and the instructions that tell the agent which tools to use. Prompts
// embed no catalog data (only the caller's own argument, through egress),
// so they need no catalog call; the tools they name do, each through the
// chain.
type catalogPrompt struct {
	name, title, description string
	// kind is the default kind of the ref argument ("" for any).
	kind string
	// tools the workflow uses; the prompt is listed only when all are
	// granted.
	tools []string
	// text renders the instructions for a parsed ref.
	text func(ref string) string
}

var catalogPrompts = []catalogPrompt{
	{
		name: "who-owns", title: "Who owns this and how do I reach them",
		description: "Find the owning team of a catalog entity, its members and how to contact them.",
		tools:       []string{"catalog_find_owner", "catalog_get_entity"},
		text: func(ref string) string {
			return "Find out who owns " + ref + " in the Backstage catalog and how to reach them.\n" +
				"1. Call catalog_find_owner with ref " + ref + ": it gives the entity's own contacts (chat channel, on-call ids), the owning group or user, its members, parent groups, e-mail, contacts and links.\n" +
				"2. If the owner has no e-mail or contacts, call catalog_find_owner on its parent groups (they are listed) for theirs.\n" +
				"Answer with the team, two or three people to ask first, and the best channel, and say what the catalog did not tell."
		},
	},
	{
		name: "blast-radius", title: "Blast radius of a change",
		description: "What depends on an entity, directly and up to three hops away, and whom to tell.",
		tools:       []string{"catalog_find_dependents"},
		text: func(ref string) string {
			return "Assess the blast radius of a change to " + ref + ".\n" +
				"1. Call catalog_find_dependents with ref " + ref + " (depth 3 is the default). It lists every entity that depends on it, " +
				"directly (dependsOn) or by consuming an API it provides, hop by hop, each with its owner and contacts, and the owning teams with e-mail and chat or on-call contacts.\n" +
				"Answer with the dependents grouped by hop distance, production ones first, and the teams to tell with how to reach them; " +
				"say that entities you may not see are not listed."
		},
	},
	{
		name: "onboard-system", title: "Onboard me to a system", kind: "system",
		description: "A tour of a system: its components, APIs, resources, owners and where to read more.",
		tools:       []string{"catalog_get_entity", "catalog_search_entities", "catalog_find_owner"},
		text: func(ref string) string {
			return "Onboard me to the system " + ref + ".\n" +
				"1. Call catalog_get_entity with ref " + ref + " for its description, owner, domain and links.\n" +
				"2. Call catalog_search_entities with system " + ref + " and limit 100 to list its parts (components, APIs, resources) in one call.\n" +
				"3. The summaries already name what each part depends on and which APIs it provides and consumes; call catalog_get_entity on a part for its links, repository, docs and on-call.\n" +
				"4. Call catalog_find_owner with ref " + ref + " to learn who to ask and how to reach them.\n" +
				"Answer with a short overview, the parts by kind with one line each, the owning team and the links worth reading first."
		},
	},
	{
		name: "review-api", title: "Review an API", kind: "api",
		description: "Review an API's definition for consistency and breaking-change risk, with its providers and consumers.",
		tools:       []string{"catalog_get_api_definition", "catalog_find_dependents", "catalog_find_owner"},
		text: func(ref string) string {
			return "Review the API " + ref + ".\n" +
				"1. Call catalog_get_api_definition with ref " + ref + " (raise maxBytes if the notice says it was cut).\n" +
				"2. Call catalog_find_dependents with ref " + ref + " and depth 1: its consumers, their owners and how to reach them.\n" +
				"3. Call catalog_find_owner with ref " + ref + " for the owning team and its contacts (the API's summary names its provider).\n" +
				"Review naming, error responses, pagination, versioning and authentication; list changes that would break its consumers, and who to tell."
		},
	},
}

// addPrompts registers the prompts.
func (s *Server) addPrompts() {
	for _, p := range catalogPrompts {
		argDesc := "Entity ref, kind:namespace/name, e.g. component:default/orders-service."
		if p.kind != "" {
			argDesc = fmt.Sprintf("%s ref, e.g. %s:default/payments (the kind may be left out).", p.kind, p.kind)
		}
		prompt := mcp.NewPrompt(p.name, mcp.WithPromptTitle(p.title), mcp.WithPromptDescription(p.description),
			mcp.WithArgument("ref", mcp.ArgumentDescription(argDesc), mcp.RequiredArgument()))
		s.mcp.AddPrompt(prompt, s.promptHandler(p))
	}
}

func (s *Server) promptHandler(p catalogPrompt) mcpserver.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		// The argument is redacted before anything else sees it, as a
		// tool's arguments are: a ref parser that lowercases would make a
		// secret in it unrecognisable to egress.
		raw, _, err := s.out.text("ref", strings.TrimSpace(req.Params.Arguments["ref"]), nil)
		if err != nil {
			return nil, fmt.Errorf("server: prompt %s: %w", p.name, err)
		}
		if raw == "" {
			return nil, invalidParams(fmt.Sprintf("prompt %s: missing argument \"ref\"", p.name))
		}
		ref, err := catalog.ParseRef(raw, p.kind)
		if err != nil {
			return nil, invalidParams(fmt.Sprintf("prompt %s: argument \"ref\": expected %s", p.name, catalog.RefFormat))
		}
		// The argument is the caller's own text, but every byte that
		// leaves passes egress.
		text, _, err := s.out.text("", p.text(ref.String()), nil)
		if err != nil {
			return nil, fmt.Errorf("server: prompt %s: %w", p.name, err)
		}
		return mcp.NewGetPromptResult(p.title, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	}
}

// filterPrompts lists a prompt only when the caller may call every tool it
// names.
func (s *Server) filterPrompts(ctx context.Context, in []mcp.Prompt) []mcp.Prompt {
	sc := s.grant(ctx)
	if sc.Err != nil {
		return []mcp.Prompt{}
	}
	allowed := map[string]bool{}
	for _, t := range sc.Grant.AllowedTools() {
		allowed[t] = true
	}
	out := make([]mcp.Prompt, 0, len(in))
	for _, pr := range in {
		for _, cp := range catalogPrompts {
			if cp.name != pr.Name {
				continue
			}
			ok := true
			for _, t := range cp.tools {
				ok = ok && allowed[t]
			}
			if ok {
				out = append(out, pr)
			}
		}
	}
	return out
}
