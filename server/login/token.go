package login

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/oauth2"
)

// StoredToken returns the stored token of issuer from the default store,
// refreshed if it had expired, and a TokenSource that refreshes it on later
// use and writes refreshed tokens back to the store. ctx carries the HTTP
// client for refreshes (oauth2.HTTPClient) and must outlive the TokenSource.
// Without a stored token it returns ErrNotLoggedIn.
func StoredToken(ctx context.Context, issuer string) (*oauth2.Token, oauth2.TokenSource, error) {
	s, err := DefaultStore()
	if err != nil {
		return nil, nil, err
	}
	return s.TokenSource(ctx, issuer)
}

// TokenSource is StoredToken on this store.
func (s *Store) TokenSource(ctx context.Context, issuer string) (*oauth2.Token, oauth2.TokenSource, error) {
	entry, err := s.Load(issuer)
	if err != nil {
		return nil, nil, err
	}
	cfg := &oauth2.Config{
		ClientID: entry.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: entry.TokenURL},
		Scopes:   entry.Scopes,
	}
	ps := &persistingSource{
		store: s,
		entry: *entry,
		src:   cfg.TokenSource(ctx, entry.Token),
		last:  entry.Token.AccessToken,
	}
	tok, err := ps.Token()
	if err != nil {
		return nil, nil, err
	}
	return tok, ps, nil
}

// persistingSource writes every new token back to the store.
type persistingSource struct {
	store *Store
	mu    sync.Mutex
	entry Entry
	src   oauth2.TokenSource
	last  string
}

// Token implements oauth2.TokenSource.
func (p *persistingSource) Token() (*oauth2.Token, error) {
	tok, err := p.src.Token()
	if err != nil {
		return nil, fmt.Errorf("login: refresh token (run `backstage-mcp login` again): %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if tok.AccessToken != p.last {
		e := p.entry
		e.Token = tok
		if err := p.store.Save(&e); err != nil {
			return nil, err
		}
		p.last = tok.AccessToken
	}
	return tok, nil
}
