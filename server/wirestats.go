package server

import "sync/atomic"

// wireStats counts the server's own work on the messages it carries: how
// often a request body is read, a message decoded and an answer encoded by
// the server's code (mcp-go's own reads, decodes and encodes are not
// counted; redactions are counted by the redactor, redact.Redactor.Calls).
// TestWireWorkPerCall holds each count to a budget per call.
type wireStats struct {
	reads, decodes, encodes atomic.Int64
}

func (w *wireStats) read() {
	if w != nil {
		w.reads.Add(1)
	}
}

func (w *wireStats) decode() {
	if w != nil {
		w.decodes.Add(1)
	}
}

func (w *wireStats) encode() {
	if w != nil {
		w.encodes.Add(1)
	}
}
