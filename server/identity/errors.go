package identity

import "errors"

// Errors callers branch on. Verification failures wrap ErrInvalidToken;
// resolution failures wrap ErrUnknownUser or are catalog errors.
var (
	// ErrNoToken means the request carried no bearer token.
	ErrNoToken = errors.New("identity: no bearer token")
	// ErrInvalidToken means the token failed verification.
	ErrInvalidToken = errors.New("identity: invalid token")
	// ErrUnknownUser means the verified user maps to no Backstage User entity
	// and no fallback role is configured.
	ErrUnknownUser = errors.New("identity: user has no Backstage entity")
	// ErrUnknownGroup means a group is not in the catalog.
	ErrUnknownGroup = errors.New("identity: no such group in the catalog")
	// ErrAmbiguousUser means the user maps to more than one User entity.
	ErrAmbiguousUser = errors.New("identity: user matches several Backstage entities")
	// ErrInvalidFilterValue means a claim value cannot be placed in a
	// Backstage catalog filter without changing its meaning.
	ErrInvalidFilterValue = errors.New("identity: value not allowed in a catalog filter")
	// ErrEntityNotFound may be returned (wrapped) by Catalog.GetEntity when
	// an entity does not exist.
	ErrEntityNotFound = errors.New("identity: entity not found")
)

// TokenError is a verification failure: Reason is short, safe to show to the
// client in error_description and to audit; it never contains the token.
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return "identity: invalid token: " + e.Reason + ": " + e.Err.Error()
	}
	return "identity: invalid token: " + e.Reason
}

// Unwrap lets errors.Is(err, ErrInvalidToken) match.
func (e *TokenError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidToken, e.Err}
	}
	return []error{ErrInvalidToken}
}

func tokenErr(reason string, err error) error {
	return &TokenError{Reason: reason, Err: err}
}
