// Package check tests the Helm chart in deploy/helm/backstage-mcp: it
// renders the chart with `helm template` and decodes every manifest
// strictly into the Kubernetes API types (an unknown or misspelt field
// fails), checks the security settings, probes and wiring, feeds the
// rendered config.yaml and policy.yaml to the server's own parsers, keeps
// the Helm values table in docs/deploying.md in step with values.yaml, and generates the
// chart's values.schema.json (chart-values.schema.json, plus the server's
// docs/config.schema.json under config once it exists), so that a typo in
// values fails helm install and helm template, not the pod.
//
// It is a separate Go module so that k8s.io/api and the Prometheus
// Operator types, needed only here, stay out of the server's go.mod and
// its build. Run it with `make chart`.
package check
