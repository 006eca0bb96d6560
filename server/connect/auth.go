package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/login"
	"golang.org/x/oauth2"
)

// SignInError means the developer has to sign in again: the stored token
// is gone, expired without a refresh token, or its refresh was refused.
type SignInError struct {
	// Server is the MCP server URL.
	Server string
	// Reason says why, in words for a person.
	Reason string
	// Started reports that connect has started a new sign-in.
	Started bool
	// Prompt is what that sign-in asks the person to do (the URL to open
	// and, for the device flow, the code to enter), when known.
	Prompt string
}

// Error says what happened and what to do, for the IDE and for stderr.
func (e *SignInError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sign in again to %s: %s.", e.Server, e.Reason)
	if e.Started {
		b.WriteString(" backstage-mcp connect has started a new sign-in")
		if p := strings.TrimSpace(e.Prompt); p != "" {
			b.WriteString(": " + oneLine(p))
		} else {
			b.WriteString(" (see its log, your IDE's MCP server output)")
		}
		b.WriteString("; retry when it is done.")
	}
	fmt.Fprintf(&b, " Or run `backstage-mcp connect --login %s` in a terminal.", e.Server)
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// tokens keeps the developer's token for one server: it refreshes it
// before it expires and when the server refuses it, and starts an
// interactive sign-in when there is no usable token.
type tokens struct {
	server   string
	store    *login.Store
	key      string
	client   *http.Client
	signIn   func(ctx context.Context, prompt io.Writer) error // nil: never sign in from here
	wait     time.Duration                                     // how long a request waits for a sign-in
	log      io.Writer
	loginCtx context.Context // lives as long as the bridge

	mu      sync.Mutex
	entry   *login.Entry
	signing chan struct{} // closed when the running sign-in ends; nil when none runs
	prompt  *promptBuffer
	signErr error
	reason  string
}

// load reads the stored entry, if any.
func (t *tokens) load() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, err := t.store.LoadKey(t.key); err == nil {
		t.entry = e
	} else if !errors.Is(err, login.ErrNotLoggedIn) {
		fmt.Fprintf(t.log, "backstage-mcp connect: %v\n", err)
	}
}

// stored is the store's entry, or nil. t.mu is held.
func (t *tokens) stored() *login.Entry {
	e, err := t.store.LoadKey(t.key)
	if err != nil || e.Token == nil {
		return nil
	}
	return e
}

// awaitOther waits up to a second for the store to hold another token
// than tok, and returns it, or nil. t.mu is held.
func (t *tokens) awaitOther(tok *oauth2.Token) *login.Entry {
	for i := 0; i < 10; i++ {
		if se := t.stored(); se != nil && se.Token.RefreshToken != tok.RefreshToken {
			return se
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// early is how long before expiry a token is refreshed: 30s, or a quarter
// of its lifetime when that is shorter.
func early(tok *oauth2.Token) time.Duration {
	d := 30 * time.Second
	if tok.ExpiresIn > 0 {
		if q := time.Duration(tok.ExpiresIn) * time.Second / 4; q < d {
			d = q
		}
	}
	return d
}

func fresh(tok *oauth2.Token) bool {
	return tok != nil && tok.AccessToken != "" && (tok.Expiry.IsZero() || time.Until(tok.Expiry) > early(tok))
}

// token returns an access token for the server. With force (the server
// answered 401) it refreshes even a token that looks valid. It returns a
// *SignInError when the developer must sign in and the sign-in did not
// finish within t.wait.
func (t *tokens) token(ctx context.Context, force bool, refused string) (string, error) {
	for range 3 {
		t.mu.Lock()
		reason := "you are not signed in"
		if e := t.entry; e != nil && e.Token != nil {
			tok := e.Token
			if !force && fresh(tok) {
				t.mu.Unlock()
				return tok.AccessToken, nil
			}
			// Another connect sharing the store (a second IDE window) may
			// have refreshed it already, and the provider may have rotated
			// the refresh token this one holds: take the stored token.
			if se := t.stored(); se != nil && se.Token.AccessToken != tok.AccessToken && (fresh(se.Token) || se.Token.RefreshToken != tok.RefreshToken) {
				t.entry = se
				t.mu.Unlock()
				force = false
				continue
			}
			if tok.RefreshToken != "" {
				nt, err := t.refresh(ctx, e)
				if err == nil {
					ne := *e
					ne.Token = nt
					t.entry = &ne
					if err := t.store.SaveKey(t.key, &ne); err != nil {
						fmt.Fprintf(t.log, "backstage-mcp connect: keeping the refreshed token: %v\n", err)
					}
					t.mu.Unlock()
					return nt.AccessToken, nil
				}
				var re *refreshError
				if !errors.As(err, &re) {
					// The provider could not be reached: keep the token.
					t.mu.Unlock()
					return "", fmt.Errorf("connect: refreshing your token: %w", err)
				}
				// A window sharing the store may have spent this refresh
				// token a moment ago (rotation): give it a second to save.
				if se := t.awaitOther(tok); se != nil {
					t.entry = se
					t.mu.Unlock()
					continue
				}
				reason = "your identity provider refused to refresh your token (" + re.Error() + ")"
			} else if !force && tok.AccessToken != "" && time.Now().Before(tok.Expiry) {
				t.mu.Unlock()
				return tok.AccessToken, nil
			} else if force {
				reason = "the server refused your token" + refused + " and there is no refresh token"
			} else {
				reason = "your token expired and there is no refresh token"
			}
			t.entry = nil
			if se := t.stored(); se != nil && se.Token.AccessToken == tok.AccessToken {
				if _, err := t.store.DeleteKey(t.key); err != nil {
					fmt.Fprintf(t.log, "backstage-mcp connect: forgetting the refused token: %v\n", err)
				}
			}
		}
		force = false
		if t.signIn == nil {
			t.mu.Unlock()
			return "", &SignInError{Server: t.server, Reason: reason}
		}
		ch, prompt := t.startSignIn(reason)
		t.mu.Unlock()

		timer := time.NewTimer(t.wait)
		select {
		case <-ch:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return "", &SignInError{Server: t.server, Reason: reason, Started: true, Prompt: prompt.String()}
		case <-timer.C:
			return "", &SignInError{Server: t.server, Reason: reason, Started: true, Prompt: prompt.String()}
		}
		t.mu.Lock()
		err := t.signErr
		t.mu.Unlock()
		if err != nil {
			return "", &SignInError{Server: t.server, Reason: reason + "; the new sign-in failed: " + err.Error()}
		}
	}
	return "", &SignInError{Server: t.server, Reason: "the new token was refused too"}
}

// startSignIn starts an interactive sign-in unless one runs. t.mu is held.
func (t *tokens) startSignIn(reason string) (chan struct{}, *promptBuffer) {
	if t.signing != nil {
		return t.signing, t.prompt
	}
	ch := make(chan struct{})
	t.signing = ch
	t.prompt = &promptBuffer{w: t.log}
	t.reason = reason
	prompt := t.prompt
	fmt.Fprintf(t.log, "backstage-mcp connect: sign-in needed for %s: %s\n", t.server, reason)
	go func() {
		err := t.signIn(t.loginCtx, prompt)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.signErr = err
		if err == nil {
			if e, lerr := t.store.LoadKey(t.key); lerr == nil {
				t.entry = e
			} else {
				t.signErr = lerr
			}
		}
		if t.signErr != nil {
			fmt.Fprintf(t.log, "backstage-mcp connect: sign-in failed: %v\n", t.signErr)
		} else {
			fmt.Fprintf(t.log, "backstage-mcp connect: signed in to %s\n", t.server)
		}
		t.signing = nil
		close(ch)
	}()
	return ch, prompt
}

// promptBuffer passes a sign-in's instructions to the log and keeps their
// first KiB for the IDE.
type promptBuffer struct {
	w  io.Writer
	mu sync.Mutex
	b  strings.Builder
}

func (p *promptBuffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.b.Len() < 1024 {
		p.b.Write(b[:min(len(b), 1024-p.b.Len())])
	}
	p.mu.Unlock()
	return p.w.Write(b)
}

func (p *promptBuffer) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.b.String()
	// Only the instructions, not the waiting line.
	s, _, _ = strings.Cut(s, "Waiting for")
	return s
}

// refreshError is the provider's refusal of a refresh token (an OAuth
// error response), as opposed to not reaching it.
type refreshError struct {
	Status      int
	Code        string
	Description string
}

// Error is the provider's error code and description.
func (e *refreshError) Error() string {
	s := e.Code
	if s == "" {
		s = fmt.Sprintf("status %d", e.Status)
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// refresh runs the refresh-token grant against the stored token endpoint,
// with the RFC 8707 resource parameter so that the new access token is for
// this server again.
func (t *tokens) refresh(ctx context.Context, e *login.Entry) (*oauth2.Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {e.Token.RefreshToken},
		"client_id":     {e.ClientID},
	}
	if e.Resource != "" {
		form.Set("resource", e.Resource)
	}
	if e.Audience != "" {
		form.Set("audience", e.Audience)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("connect: refresh: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("connect: refresh: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata))
	if err != nil {
		return nil, fmt.Errorf("connect: refresh: %w", err)
	}
	var body struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		Error        string          `json:"error"`
		Description  string          `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &body)
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("connect: refresh: the provider answered %d", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return nil, &refreshError{Status: resp.StatusCode, Code: body.Error, Description: oneLine(body.Description)}
	}
	tok := &oauth2.Token{AccessToken: body.AccessToken, TokenType: body.TokenType, RefreshToken: body.RefreshToken}
	if tok.RefreshToken == "" {
		tok.RefreshToken = e.Token.RefreshToken // the provider keeps the old one
	}
	var secs json.Number
	if len(body.ExpiresIn) > 0 && json.Unmarshal(body.ExpiresIn, &secs) == nil {
		if n, err := secs.Int64(); err == nil && n > 0 {
			tok.ExpiresIn = n
			tok.Expiry = time.Now().Add(time.Duration(n) * time.Second)
		}
	} else if len(body.ExpiresIn) > 0 {
		var s string
		if json.Unmarshal(body.ExpiresIn, &s) == nil {
			var n int64
			if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
				tok.ExpiresIn = n
				tok.Expiry = time.Now().Add(time.Duration(n) * time.Second)
			}
		}
	}
	return tok, nil
}
