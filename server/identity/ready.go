package identity

import (
	"context"
	"errors"
	"fmt"
)

// IssuerStatus says whether one trusted issuer can verify tokens now.
type IssuerStatus struct {
	// Issuer is the issuer URL.
	Issuer string
	// Keys is the number of signing keys held.
	Keys int
	// Err is why no token of this issuer could be verified now; nil when
	// keys are held (fetched now or cached from before).
	Err error
}

// Ready reports, for every issuer, whether its signing keys are at hand:
// already cached, or discovered and fetched now. Discovery and key fetches
// keep their rate limits (at most one per key refetch interval), so
// frequent readiness probes never storm the identity provider.
func (a *Authenticator) Ready(ctx context.Context) []IssuerStatus {
	out := make([]IssuerStatus, 0, len(a.cfg.Issuers))
	for _, is := range a.cfg.Issuers {
		iv := a.issuers[is.URL]
		st := IssuerStatus{Issuer: is.URL}
		if _, err := a.verifierFor(ctx, iv); err != nil {
			st.Err = err
			out = append(out, st)
			continue
		}
		iv.mu.Lock()
		keys := iv.keys
		iv.mu.Unlock()
		st.Keys = len(keys.cached())
		if st.Keys == 0 {
			err := keys.refresh(ctx)
			st.Keys = len(keys.cached())
			switch {
			case st.Keys > 0:
			case errors.Is(err, errRefetchLimited):
				st.Err = fmt.Errorf("identity: no signing keys yet; the last JWKS fetch failed and the next is rate-limited: %w", err)
			case err != nil:
				st.Err = err
			default:
				st.Err = errors.New("identity: the JWKS holds no usable signing key")
			}
		}
		out = append(out, st)
	}
	return out
}
