package catalog

import (
	"encoding/json"
	"time"
)

// Change is one change to the catalog that a mirror saw: an entity added,
// changed or removed, when the sync that found it began.
type Change struct {
	// Op is ChangeAdded, ChangeChanged or ChangeRemoved.
	Op string
	// Ref is the entity's ref, lower case (kind:namespace/name).
	Ref string
	// At is the start of the sync that found the change.
	At time.Time
	// Before is the entity as it was before a change or removal (nil
	// for an addition), so that whether the caller could see it, and
	// whether the change shows in what it can see, can be decided.
	Before json.RawMessage
}

// The operations of a Change.
const (
	ChangeAdded   = "added"
	ChangeChanged = "changed"
	ChangeRemoved = "removed"
)
