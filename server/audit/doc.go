// Package audit writes and checks the tamper-evident audit trail of
// backstage-mcp: one JSON line per agent tool call, per authentication
// failure, and per server start, stop and policy reload.
//
// # Writing
//
// [Open] returns a [Log]. Each [Log.Append] fills the record's id, seq,
// time (if zero), prevHash and hash, writes exactly one line and, under the
// default [SyncEvery] policy, syncs it before returning. Nothing is ever
// dropped and no record is acknowledged early.
//
// Concurrent appends share writes and syncs (group commit): each Append
// encodes its record under a mutex (the chain is sequential) and queues the
// line; the first appender that finds no flush in progress becomes the
// leader, takes every queued line, writes them with one write(2) and makes
// them durable with one fdatasync(2), then wakes the others. While it
// flushes, new records queue behind it and the next leader takes them all.
// Each Append still returns only once its own record is written (and synced
// under SyncEvery). If a write or a sync fails, Append returns the error
// (the caller must fail the tool call) to every record of the failed batch
// and to those queued behind it, the chain continues from the last record
// that is complete in the file, and [Log.Healthy] reports the failure so a
// readiness probe can turn red.
//
//	log, err := audit.Open(audit.DefaultConfig())
//	if err != nil { ... }
//	defer log.Close()
//	rec := &audit.Record{Type: audit.TypeCall, Tool: "catalog_get_entity", Decision: audit.DecisionAllowed}
//	if err := log.Append(ctx, rec); err != nil {
//		// fail the call: it must not return unaudited
//	}
//
// # Record format and hash chain
//
// A line is the JSON encoding of [Record], fields in struct order, with
// "hash" always last. The hash of a record is the lowercase hex SHA-256 of
// the exact line bytes (without the newline) in which the hash value is the
// empty string, that is the line ending in "hash":""}. The stored line is the
// same bytes with that empty string replaced by the hex digest. prevHash is
// the hash of the previous record, or [GenesisHash] for the first record ever
// written; seq starts at 1 and grows by one per record. Because the hash
// covers the exact bytes, any change to a record (including whitespace or key
// order) is detected.
//
// # Files, rotation and resume
//
// The file sink appends to Config.Path (mode 0600, O_APPEND). When the next
// record would make it larger than Config.MaxBytes, or the file was started
// Config.RotateAge ago, the file is synced and renamed to
// PATH.YYYYMMDDTHHMMSS.nnnnnnnnnZ (UTC time of rotation; names sort
// chronologically) and a new PATH is created. The chain does not restart:
// the first record of the new file carries the last hash of the previous file
// as its prevHash and the next seq.
//
// Retention (Config.RetainAge, Config.RetainBytes) removes the oldest
// rotated files, only ever as a run from the oldest, after each rotation and
// once a minute. Before removing a file it appends a [TypeRetention] record
// naming the seq range and the hashes at both ends of everything removed so
// far, so what remains verifies as one chain that starts at seq N, and
// [Verify] can tell that seq 1..N-1 were removed by the server
// ([VerifyResult].RemovedByRetention) rather than cut. Checkpoints stay
// verifiable: the first remaining checkpoint names a previous one that is
// in a removed file, which Verify accepts when that seq lies before the
// files given.
//
// On Open an existing chain is resumed: the last complete, correctly hashed
// record of PATH (or, if PATH holds none, of the newest rotated file) gives
// the seq and hash to continue from. A torn last line (a crash in the middle
// of a write) is kept as evidence, terminated with a newline, and the chain
// continues from the last good record. The same happens after a failed,
// partial write at run time.
//
// # Verification semantics
//
// [Verify] orders the given files by the seq of their first record (so a
// shell glob in any order works), then checks every line: valid JSON, the
// hash of its exact bytes, the prevHash link and seq continuity, across
// files. It reports the first bad record with its file, line, seq and a
// [ProblemKind]: edited, deleted, reordered, duplicated or truncated.
//
// A line that is not a complete record, with the chain intact around it (the
// record after it links to the record before it), is a torn line: the trace of
// a crash or a failed write in the middle of a line. It is reported in
// [VerifyResult].Torn but does not fail verification, because no acknowledged
// record is missing: Append never returned success for it.
//
// What the chain detects on its own: any edit of a record; deletion of records
// anywhere except at the very end of the newest file; reordering or
// duplication; truncation of a rotated file (the next file's first record
// links to a hash that is no longer there); removal of a file in the middle.
//
// What it cannot detect without an external anchor: removal of the last
// complete records of the newest file (or of the newest file itself), which
// leaves a valid but shorter chain; removal of the oldest files (verification
// then reports that the chain starts mid-way, at seq N, not from genesis); and
// a wholesale rewrite by someone who recomputes every hash. To close the first
// gap, copy [Log.Head] (seq and hash) to a separate system from time to time
// (operational logs, a ticket, a server_stop record shipped elsewhere) and
// pass it to [VerifyWithOptions] as an [Anchor]: a log that ends before the
// anchor's seq, or holds a different hash there, then fails as truncated or
// edited.
//
// # Reviewing
//
// [Query] reads records matching a [Filter] and [Summary] aggregates them per
// user, agent and tool. Neither verifies the chain: run Verify first.
package audit
