package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	log, err := audit.Open(audit.Config{Path: path})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, r := range []*audit.Record{
		{Type: audit.TypeServerStart},
		{Type: audit.TypeCall, User: audit.User{Email: "jane@example.com"}, Agent: audit.Agent{ClientID: "copilot"},
			Tool: "catalog_get_entity", Decision: audit.DecisionAllowed, DurationMs: 12},
		{Type: audit.TypeServerStop},
	} {
		if err := log.Append(ctx, r); err != nil {
			panic(err) // the audited call must fail
		}
	}
	if err := log.Close(); err != nil {
		panic(err)
	}

	res, err := audit.Verify(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.OK, res.Records, res.FromGenesis, res.LastType)

	q, err := audit.Query([]string{path}, audit.Filter{User: "jane@example.com"})
	if err != nil {
		panic(err)
	}
	for _, row := range audit.Summary(q.Records) {
		fmt.Println(row.User, row.Agent, row.Tool, row.Calls)
	}
	// Output:
	// true 3 true server_stop
	// jane@example.com copilot catalog_get_entity 1
}
