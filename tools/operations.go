package tools

import (
	"bufio"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
)

// MaxOperationNames caps the operations an API's summary names; the rest
// are counted ("and N more"), as related entities are.
const MaxOperationNames = 5

// maxOperationScan bounds the bytes of a definition read for its
// operations: the names come from its first 256 KiB.
const maxOperationScan = 256 << 10

var (
	graphqlRoot = regexp.MustCompile(`^\s*(?:extend\s+)?type\s+(Query|Mutation|Subscription)\b[^{]*\{`)
	graphqlFld  = regexp.MustCompile(`^\s*(\w+)\s*[(:]`)
	grpcRPC     = regexp.MustCompile(`^\s*rpc\s+(\w+)\s*\(`)
)

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// operations lists what an API offers, from its definition, in the
// definition's order: "GET /path" for OpenAPI (YAML or JSON), channel
// names for AsyncAPI, "query name" / "mutation name" for GraphQL, "rpc
// Name" for gRPC. It returns the first MaxOperationNames and how many it
// found in all; a definition it cannot read yields none. The names are
// read from the definition as the caller may see it (masked, redacted).
func operations(apiType, def string) (names []string, total int) {
	if len(def) > maxOperationScan {
		def = def[:maxOperationScan]
	}
	add := func(op string) {
		if total < MaxOperationNames {
			names = append(names, op)
		}
		total++
	}
	switch strings.ToLower(apiType) {
	case "openapi", "swagger":
		if t := strings.TrimSpace(def); strings.HasPrefix(t, "{") {
			openAPIJSON(t, add)
		} else {
			yamlSection(def, "paths", true, add)
		}
	case "asyncapi":
		yamlSection(def, "channels", false, add)
	case "graphql":
		root := ""
		sc := bufio.NewScanner(strings.NewReader(def))
		sc.Buffer(make([]byte, 0, 4096), maxOperationScan)
		for sc.Scan() {
			line := sc.Text()
			if m := graphqlRoot.FindStringSubmatch(line); m != nil {
				root = strings.ToLower(m[1])
				continue
			}
			if root == "" {
				continue
			}
			if strings.Contains(line, "}") {
				root = ""
				continue
			}
			if m := graphqlFld.FindStringSubmatch(line); m != nil {
				add(root + " " + m[1])
			}
		}
	case "grpc":
		sc := bufio.NewScanner(strings.NewReader(def))
		sc.Buffer(make([]byte, 0, 4096), maxOperationScan)
		for sc.Scan() {
			if m := grpcRPC.FindStringSubmatch(sc.Text()); m != nil {
				add("rpc " + m[1])
			}
		}
	}
	return names, total
}

// yamlSection reads the keys of a top-level YAML mapping (paths,
// channels) line by line: each key one level in, and with methods, the
// HTTP methods one level further as "METHOD key". Block style only: a
// method written in flow style ("get: {}") is not read.
func yamlSection(def, section string, methods bool, add func(string)) {
	in, keyIndent, methodIndent := false, -1, -1
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(def))
	sc.Buffer(make([]byte, 0, 4096), maxOperationScan)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		body := strings.TrimLeft(line, " ")
		if body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		indent := len(line) - len(body)
		if indent == 0 {
			in = body == section+":"
			continue
		}
		if !in || !strings.HasSuffix(body, ":") {
			continue
		}
		key := strings.Trim(strings.TrimSuffix(body, ":"), `"'`)
		switch {
		case keyIndent < 0 || indent == keyIndent:
			keyIndent, cur, methodIndent = indent, key, -1
			if !methods {
				add(key)
			}
		case methods && indent > keyIndent && (methodIndent < 0 || indent == methodIndent):
			methodIndent = indent
			if httpMethods[strings.ToLower(key)] {
				add(strings.ToUpper(key) + " " + cur)
			}
		}
	}
}

// openAPIJSON reads the operations of an OpenAPI document in JSON.
func openAPIJSON(def string, add func(string)) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if json.Unmarshal([]byte(def), &doc) != nil {
		return
	}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ms := make([]string, 0, len(doc.Paths[p]))
		for m := range doc.Paths[p] {
			if httpMethods[strings.ToLower(m)] {
				ms = append(ms, strings.ToUpper(m))
			}
		}
		sort.Strings(ms)
		for _, m := range ms {
			add(m + " " + p)
		}
	}
}
