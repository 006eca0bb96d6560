package catalog

import (
	"errors"
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound: the entity does not exist (or the caller may not see it).
	ErrNotFound = errors.New("catalog: not found")
	// ErrNotAllowed: Backstage refused the server's credential.
	ErrNotAllowed = errors.New("catalog: not allowed")
	// ErrBadInput: Backstage rejected the query as malformed.
	ErrBadInput = errors.New("catalog: bad input")
	// ErrRateLimited: Backstage (or a proxy before it) asked us to slow down.
	ErrRateLimited = errors.New("catalog: rate limited")
	// ErrUnavailable: Backstage is down, slow, failing or answering garbage.
	ErrUnavailable = errors.New("catalog: Backstage unavailable")
	// ErrInvalidRef: an entity ref does not follow Backstage's format.
	ErrInvalidRef = errors.New("catalog: invalid entity ref")
	// ErrBadFilter: a filter key or value could alter the query (package
	// filter's sentinel: its *filter.Error names the key or value and why).
	ErrBadFilter = filter.ErrInvalid
	// ErrResponseTooLarge: an answer exceeded Config.MaxResponseBytes. It
	// comes with ErrUnavailable (errors.Is matches both); a caller that
	// pages can retry with a smaller page.
	ErrResponseTooLarge = errors.New("catalog: response too large")
)

// UpstreamError describes a failed call to Backstage. Its message never
// contains the upstream body: only the status, Backstage's error name
// (from its {"error":{"name":…}} body) and what we asked for.
type UpstreamError struct {
	Kind   error  // one of the sentinels above
	Status int    // HTTP status, 0 when no response arrived
	Name   string // Backstage's error name, e.g. NotFoundError, when present
	Op     string // what we were doing, e.g. "get entity component:default/x"
	Cause  error  // transport error, if any (never an upstream body)
}

func (e *UpstreamError) Error() string {
	msg := fmt.Sprintf("%v: %s", e.Kind, e.Op)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Name != "" {
			msg += " " + e.Name
		}
		msg += ")"
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap lets errors.Is match the sentinel kind.
func (e *UpstreamError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// TooLarge is the error for an answer larger than max bytes, as the
// client reports a response body over Config.MaxResponseBytes (it matches
// ErrUnavailable and ErrResponseTooLarge). status is the HTTP status the
// answer came with; a catalog answered in process (the mirror) passes 200.
func TooLarge(op string, status int, max int64) *UpstreamError {
	return &UpstreamError{Kind: ErrUnavailable, Status: status, Op: op,
		Cause: fmt.Errorf("%w: larger than %d bytes", ErrResponseTooLarge, max)}
}

// TimedOut is the error for a call that ran out of time (its context's
// deadline or the configured timeout), as the client reports a request to
// Backstage that timed out.
func TimedOut(op string) *UpstreamError {
	return &UpstreamError{Kind: ErrUnavailable, Op: op, Cause: errTimedOut}
}

var errTimedOut = errors.New("timed out")
