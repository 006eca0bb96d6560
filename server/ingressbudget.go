package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
)

// Every message a signed-in caller sends is charged before it costs:
// before ingress redaction (the server's most expensive step per byte),
// before mcp-go decodes it and before any session is created. ping and
// notifications, which no tool limit sees, are charged like calls. Two
// buckets per user, per replica: messages (server.ingressRate) and bytes
// (server.ingressKiBRate, one token per KiB started). A caller over either
// gets 429 with Retry-After and a JSON-RPC error; the refusal is audited
// aggregated per user and interval.

// ingressBudget holds the per-user message and byte buckets.
type ingressBudget struct {
	lim *ratelimit.Memory
}

const (
	ingressMessages = "messages"
	ingressKiB      = "kib"
)

func newIngressBudget(msgs, kib ratelimit.Rate) (*ingressBudget, error) {
	lim, err := ratelimit.NewMemory(ratelimit.Config{
		DefaultClass: ingressMessages,
		Classes:      map[string]ratelimit.Rate{ingressMessages: msgs, ingressKiB: kib},
		Agent:        ratelimit.Rate{Unlimited: true},
		Global:       ratelimit.Rate{Unlimited: true},
	})
	if err != nil {
		return nil, fmt.Errorf("server: ingress rates: %w", err)
	}
	return &ingressBudget{lim: lim}, nil
}

// charge takes one message and the body's KiB from user's buckets.
func (b *ingressBudget) charge(ctx context.Context, user string, n int) (ratelimit.Decision, error) {
	kib := max(1, (n+1023)/1024)
	d, err := b.lim.Allow(ctx, ratelimit.UserKey(user, ingressMessages), 1)
	if err != nil || !d.Allowed {
		return d, err
	}
	return b.lim.Allow(ctx, ratelimit.UserKey(user, ingressKiB), kib)
}

// chargeIngress charges the request's caller for a body of n bytes. It
// answers the refusal itself and reports whether the request may go on.
// Requests without a principal (the call chain refuses them) and stdio
// (the user's own process) are not charged here.
func (s *Server) chargeIngress(w http.ResponseWriter, r *http.Request, n int) bool {
	ctx := r.Context()
	p, err := s.principal(ctx)
	if err != nil || p == nil || s.budget == nil {
		return true
	}
	d, err := s.budget.charge(ctx, p.LimitKey(), n)
	reason := ""
	switch {
	case err != nil:
		// A body larger than the byte bucket's burst can never pass.
		reason = "message larger than the ingress byte budget"
		d.RetryAfter = 0
	case !d.Allowed:
		reason = "too many messages from this user (ingress budget)"
	default:
		return true
	}
	rec := s.authFailureRecord(ctx, reason, r)
	rec.Type, rec.Decision, rec.Rule, rec.Stage, rec.Limiter = audit.TypeSession, audit.DecisionRateLimited, "ratelimit:ingress", "ingress", "ingress"
	s.authFailures.add(rec)
	if d.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(d.RetryAfter)))
	}
	// The body was not read and will not be: closing the connection
	// spares the server from draining it (Go's server reads up to 256 KiB
	// of an unread body to reuse a connection).
	w.Header().Set("Connection", "close")
	writeRPCError(w, r, http.StatusTooManyRequests, nil, -32000, reason+"; retry later")
	return false
}
