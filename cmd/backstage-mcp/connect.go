package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/connect"
)

const connectHelp = `Usage: backstage-mcp connect [flags] SERVER_URL

Connects your IDE to a shared backstage-mcp server as you. Your IDE starts
this command as a local stdio MCP server; it relays every message to
SERVER_URL (the server's /mcp endpoint) over Streamable HTTP with your
token. Nothing else is on your machine: no Backstage token, no policy, no
audit file.

Sign-in: the server's OAuth metadata names its identity provider. The first
time, connect opens your browser (authorization code + PKCE, back to
http://127.0.0.1:<port>/callback), or with --device, or when there is no
browser, prints a URL and a code to enter on any device. The token is kept
in your user config directory (backstage-mcp/token.json, mode 0600) and
refreshed before it expires. When you must sign in again, the IDE's pending
call gets an error saying so, and a new sign-in starts.

Sign in from a terminal first (the IDE may hide where the code is printed):
  backstage-mcp connect --login --client-id backstage-mcp-cli https://mcp.example.com/mcp
Then in the IDE's MCP config, the command and its arguments:
  backstage-mcp connect --client-id backstage-mcp-cli https://mcp.example.com/mcp

Ask your platform team for SERVER_URL and the client ID: a public OAuth
client (no secret) registered with your identity provider for loopback
redirects (browser) and/or the device grant, with refresh tokens.
The client ID may also come from BACKSTAGE_MCP_CLIENT_ID.

Flags:
`

// runConnect is the `connect` subcommand.
func runConnect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), connectHelp)
		fs.PrintDefaults()
	}
	clientID := fs.String("client-id", os.Getenv("BACKSTAGE_MCP_CLIENT_ID"), "the public OAuth client registered for connect (default $BACKSTAGE_MCP_CLIENT_ID)")
	issuer := fs.String("issuer", "", "the identity provider to use, when the server trusts several (default the first it names)")
	scopes := fs.String("scopes", "", "scopes to request, space or comma separated (default openid offline_access and the server's scopes)")
	audience := fs.String("audience", "", "audience parameter, for providers that use it instead of the resource parameter")
	noResource := fs.Bool("no-resource", false, "do not send the resource parameter (Microsoft Entra ID v2 rejects it: pass the API's scope with --scopes instead)")
	device := fs.Bool("device", false, "sign in with the device flow (a URL and a code) instead of the browser")
	doLogin := fs.Bool("login", false, "sign in now, store the token and exit (run it in a terminal)")
	doLogout := fs.Bool("logout", false, "forget (and revoke) the stored token for SERVER_URL and exit")
	callTimeout := fs.Duration("timeout", connect.DefaultCallTimeout, "give up on one message and its answer after this long")
	signInWait := fs.Duration("sign-in-wait", connect.DefaultSignInWait, "how long a call waits for a sign-in before it is answered with a sign-in error")
	maxMessage := fs.Int("max-message", connect.DefaultMaxMessage, "largest JSON-RPC message relayed either way, in bytes")
	fail := failer("connect", stderr)

	// Flags may come before or after the URL.
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fail("which server? pass its URL, e.g. https://mcp.example.com/mcp (see backstage-mcp connect --help)")
	}
	serverURL := rest[0]
	if code, done := parseCommand(fs, rest[1:], stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if *doLogin && *doLogout {
		return fail("--login and --logout together?")
	}
	if _, err := connect.CheckServerURL(serverURL); err != nil {
		return fail("%v", err)
	}
	opts := connect.Options{
		ServerURL:   serverURL,
		ClientID:    *clientID,
		Issuer:      *issuer,
		Scopes:      strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' }),
		Audience:    *audience,
		NoResource:  *noResource,
		Device:      *device,
		Log:         stderr,
		CallTimeout: *callTimeout,
		SignInWait:  *signInWait,
		MaxMessage:  *maxMessage,
		UserAgent:   "backstage-mcp-connect/" + appVersion(),
	}
	if !*device && browserAvailable() {
		opts.OpenURL = func(u string) error { return openBrowser(ctx, u) }
	}
	switch {
	case *doLogout:
		removed, err := connect.SignOut(ctx, opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			if !removed {
				return 1
			}
		}
		if removed {
			fmt.Fprintf(stdout, "Signed out of %s\n", serverURL)
		} else {
			fmt.Fprintf(stdout, "No stored token for %s\n", serverURL)
		}
		return 0
	case *doLogin:
		if opts.ClientID == "" {
			return fail("--client-id is required to sign in (ask your platform team for the public client registered for backstage-mcp connect)")
		}
		e, err := connect.SignIn(ctx, opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "Signed in to %s through %s", serverURL, e.Issuer)
		if e.Token != nil && !e.Token.Expiry.IsZero() {
			fmt.Fprintf(stdout, " (access token valid until %s, refreshed automatically)", e.Token.Expiry.Local().Format(time.RFC3339))
		}
		fmt.Fprintln(stdout)
		return 0
	}
	if err := connect.Run(ctx, opts, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// browserAvailable reports whether a browser can likely be opened here.
func browserAvailable() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return false
	}
	_, err := exec.LookPath("xdg-open")
	return err == nil
}
