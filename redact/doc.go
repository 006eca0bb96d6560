// Package redact finds and removes secrets from JSON documents and free text
// (YAML, API definitions, descriptions) before they leave the server, and
// strips invisible Unicode that could smuggle hidden instructions to an agent.
//
// Detection runs in three stages: a case-insensitive Aho–Corasick keyword
// prefilter selects the few rules worth running on a string; each selected
// rule's regular expression finds candidates; entropy floors and allowlists
// (UUIDs, hashes, templates such as ${VAR} or {{ … }}, placeholders and
// documented example keys) reject the look-alikes. JSON is walked leaf by
// leaf with the key as context, so "token": "…" is judged with its key.
// Percent-encoding and backslash escapes are decoded before matching.
//
// A secret is replaced by "[REDACTED:<rule-id>]"; only the secret part is
// replaced (a URL keeps its scheme, user and host, a connection string its
// database). Redacting already-redacted output changes nothing.
//
// The package is pure: standard library only, no I/O.
package redact
