// Package ship exports the audit trail to a SIEM: it tails the audit files
// that package audit writes and forwards every record to the configured
// sinks (stdout, syslog over TCP or TLS, OTLP logs, an HTTP event collector
// compatible with Splunk's), in the trail's own JSON, in OCSF (API Activity,
// class 6003) or in ECS.
//
// # Durability and delivery
//
// The fsynced audit file stays the durable record: a tool call still gets no
// result unless its record is in the file (package audit's rule, unchanged).
// Shipping happens afterwards, in the background, and never blocks a call.
// Each sink has its own [Shipper], which reads the files from its own
// position and keeps, in a small state file beside the audit file, the seq of
// the last record the sink acknowledged. The audit files and that state file
// are the on-disk buffer: nothing is held in memory beyond one batch, a
// restart resumes after the acknowledged record, and a rotation is followed
// by the seq of the records, not by file names.
//
// Delivery is at least once: a batch is sent again until the sink
// acknowledges it (an HTTP 2xx, the HEC indexer's ack when enabled, a
// completed write for syslog), so a receiver may see a record twice and
// should deduplicate on its id. The buffer is bounded by the audit trail's
// own size and retention: a record deleted from disk before it was shipped
// cannot be shipped, and the shipper counts and logs the gap.
package ship
