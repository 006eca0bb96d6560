// Package check tests the Helm chart in deploy/helm/backstage-mcp: it
// renders the chart with `helm template` and decodes every manifest
// strictly into the Kubernetes API types (an unknown or misspelt field
// fails), checks the security settings, probes and wiring, feeds the
// rendered config.yaml and policy.yaml to the server's own parsers, and
// keeps the Helm values table in docs/deploying.md in step with values.yaml.
//
// It is a separate Go module so that k8s.io/api and the Prometheus
// Operator types, needed only here, stay out of the server's go.mod and
// its build. Run it with `make chart`.
package check
