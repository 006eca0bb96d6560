package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/login"
)

const loginHelp = `Usage: backstage-mcp login --issuer URL --client-id ID [flags]

Signs you in with your company's OpenID provider so that
'backstage-mcp serve --stdio' acts as you. The token is kept in your user
config directory (backstage-mcp/token.json, mode 0600) and refreshed when it
expires; 'backstage-mcp logout' removes it.

By default this uses the device flow: it prints a URL and a short code; open
the URL on any device, sign in and enter the code. With --browser it uses
the authorization code flow with PKCE instead: it prints a URL to open in a
browser on this machine, which then returns to http://127.0.0.1:<port>/callback.

Ask your identity team for a public (no secret) OAuth client that allows the
device grant (or loopback redirects for --browser), and for the resource /
audience value of your backstage-mcp server.

Examples:
  backstage-mcp login --issuer https://company.okta.com/oauth2/default \
      --client-id 0oa1example --scopes "openid offline_access catalog.read" \
      --resource https://mcp.example.com/mcp
  backstage-mcp login --issuer https://login.example.com/realms/eng \
      --client-id backstage-mcp-cli --browser

Flags:
`

const logoutHelp = `Usage: backstage-mcp logout --issuer URL

Deletes the token stored by 'backstage-mcp login' for this issuer and, when
the provider offers a revocation endpoint, revokes it there.

Flags:
`

// runLogin is the `login` subcommand.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loginHelp)
		fs.PrintDefaults()
	}
	issuer := fs.String("issuer", "", "OpenID provider issuer URL (required)")
	clientID := fs.String("client-id", "", "OAuth client ID of this CLI, a public client (required)")
	scopes := fs.String("scopes", strings.Join(login.DefaultScopes, " "), "scopes to request, space or comma separated")
	browser := fs.Bool("browser", false, "use the authorization code flow with PKCE on a loopback redirect instead of the device flow")
	resource := fs.String("resource", "", "the MCP server's resource URL, sent as the RFC 8707 resource parameter")
	audience := fs.String("audience", "", "audience parameter, for providers that use it instead of resource")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up if sign-in has not finished by then")
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if *issuer == "" || *clientID == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "backstage-mcp login: --issuer and --client-id are required (see backstage-mcp login --help)")
		return 2
	}
	opts := login.Options{
		Issuer:   *issuer,
		ClientID: *clientID,
		Scopes:   strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' }),
		Resource: *resource,
		Audience: *audience,
		Browser:  *browser,
		Prompt:   stderr,
		Timeout:  *timeout,
	}
	if *browser {
		opts.OpenURL = func(u string) error { return openBrowser(ctx, u) }
	}
	tok, err := login.Login(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	store, _ := login.DefaultStore()
	path := ""
	if store != nil {
		path = store.Path()
	}
	fmt.Fprintf(stdout, "Logged in to %s; token stored in %s", *issuer, path)
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(stdout, " (access token valid until %s, refreshed automatically)", tok.Expiry.Local().Format(time.RFC3339))
	}
	fmt.Fprintln(stdout)
	return 0
}

// runLogout is the `logout` subcommand.
func runLogout(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), logoutHelp)
		fs.PrintDefaults()
	}
	issuer := fs.String("issuer", "", "OpenID provider issuer URL (required)")
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if *issuer == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "backstage-mcp logout: --issuer is required (see backstage-mcp logout --help)")
		return 2
	}
	removed, err := login.Logout(ctx, login.Options{Issuer: *issuer})
	if err != nil {
		fmt.Fprintln(stderr, err)
		if !removed {
			return 1
		}
	}
	if removed {
		fmt.Fprintf(stdout, "Logged out of %s\n", *issuer)
	} else {
		fmt.Fprintf(stdout, "No stored token for %s\n", *issuer)
	}
	return 0
}

// openBrowser tries the platform's URL opener; the URL is printed anyway.
func openBrowser(ctx context.Context, url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", url) //nolint:gosec // fixed program; the URL is one argument, no shell
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", url) //nolint:gosec // fixed program; the URL is one argument, no shell
	default:
		if _, err := exec.LookPath("xdg-open"); err != nil {
			return errors.New("no xdg-open: open the URL yourself")
		}
		cmd = exec.CommandContext(ctx, "xdg-open", url) //nolint:gosec // fixed program; the URL is one argument, no shell
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
