package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/redis/go-redis/v9"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRedisConfigValidate(t *testing.T) {
	pw := writeFile(t, "pw", "s3cret\n")
	cases := []struct {
		name    string
		cfg     RedisConfig
		wantKey string // "" = valid
		wantMsg string
	}{
		{"url", RedisConfig{URL: "redis://r:6379/0"}, "", ""},
		{"url with tls and ca", RedisConfig{URL: "rediss://r:6379/0", TLS: RedisTLSConfig{CAFile: "ca.pem"}}, "", ""},
		{"url with acl from file", RedisConfig{URL: "redis://r:6379/0", Username: "app", PasswordFile: pw}, "", ""},
		{"sentinel", RedisConfig{Sentinel: RedisSentinelConfig{MasterName: "m", Addrs: []string{"s1:26379", "s2:26379"}}}, "", ""},
		{"cluster with tls", RedisConfig{Cluster: RedisClusterConfig{Addrs: []string{"n1:6379"}}, TLS: RedisTLSConfig{Enabled: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}}, "", ""},
		{"nothing", RedisConfig{}, "redis", "redis.url (one server"},
		{"two modes", RedisConfig{URL: "redis://r:6379", Cluster: RedisClusterConfig{Addrs: []string{"n1:6379"}}}, "redis", "only one of"},
		{"bad scheme", RedisConfig{URL: "http://r:6379"}, "redis.url", "redis://host:port/db"},
		{"sentinel without master", RedisConfig{Sentinel: RedisSentinelConfig{Addrs: []string{"s1:26379"}}}, "redis.sentinel.masterName", "is required"},
		{"sentinel without addrs", RedisConfig{Sentinel: RedisSentinelConfig{MasterName: "m"}}, "redis.sentinel.addrs", "host:port"},
		{"sentinel bad addr", RedisConfig{Sentinel: RedisSentinelConfig{MasterName: "m", Addrs: []string{"s1"}}}, "redis.sentinel.addrs[0]", `"s1" must be host:port`},
		{"sentinel user without password", RedisConfig{Sentinel: RedisSentinelConfig{MasterName: "m", Addrs: []string{"s:1"}, Username: "u"}}, "redis.sentinel.username", "passwordFile"},
		{"cluster bad port", RedisConfig{Cluster: RedisClusterConfig{Addrs: []string{"n1:6379", "n2:99999"}}}, "redis.cluster.addrs[1]", "host:port"},
		{"username without password file", RedisConfig{URL: "redis://r:6379", Username: "app"}, "redis.username", "needs redis.passwordFile"},
		{"password twice", RedisConfig{URL: "redis://:pw@r:6379", PasswordFile: pw}, "redis.passwordFile", "both set"},
		{"user twice", RedisConfig{URL: "redis://u@r:6379", Username: "app", PasswordFile: pw}, "redis.username", "both set"},
		{"ca without tls", RedisConfig{Cluster: RedisClusterConfig{Addrs: []string{"n1:6379"}}, TLS: RedisTLSConfig{CAFile: "ca.pem"}}, "redis.tls.caFile", "TLS is off"},
		{"tls on a redis url", RedisConfig{URL: "redis://r:6379", TLS: RedisTLSConfig{Enabled: true}}, "redis.tls.enabled", "rediss://"},
		{"cert without key", RedisConfig{URL: "rediss://r:6379", TLS: RedisTLSConfig{CertFile: "c.pem"}}, "redis.tls.certFile", "go together"},
		{"timeout", RedisConfig{URL: "redis://r:6379", Timeout: time.Minute}, "redis.timeout", "between 0 and 10s"},
		{"pool", RedisConfig{URL: "redis://r:6379", PoolSize: -1}, "redis.poolSize", "between 0"},
		{"prefix", RedisConfig{URL: "redis://r:6379", KeyPrefix: strings.Repeat("p", 200)}, "redis.keyPrefix", "at most 128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.wantKey || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Fatalf("Validate = %v, want key %s with %q", err, tc.wantKey, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

func TestRedisConfigCheckReadsFiles(t *testing.T) {
	tlsf := redistest.NewTLSFiles(t)
	empty := writeFile(t, "empty", "\n")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	big := writeFile(t, "big", strings.Repeat("x", 5000))
	cases := []struct {
		name    string
		cfg     RedisConfig
		wantKey string
		wantMsg string
	}{
		{"all present", RedisConfig{URL: "rediss://r:6379", PasswordFile: writeFile(t, "pw", "p\n"),
			TLS: RedisTLSConfig{CAFile: tlsf.CA, CertFile: tlsf.ClientCert, KeyFile: tlsf.ClientKey}}, "", ""},
		{"missing password file", RedisConfig{URL: "redis://r:6379", PasswordFile: "/nonexistent/pw"}, "redis.passwordFile", "no such file"},
		{"empty password file", RedisConfig{URL: "redis://r:6379", PasswordFile: empty}, "redis.passwordFile", "is empty"},
		{"oversized password file", RedisConfig{URL: "redis://r:6379", PasswordFile: big}, "redis.passwordFile", "larger than 4096"},
		{"sentinel password file", RedisConfig{Sentinel: RedisSentinelConfig{MasterName: "m", Addrs: []string{"s:1"}, PasswordFile: "/nonexistent/s"}}, "redis.sentinel.passwordFile", "no such file"},
		{"ca not pem", RedisConfig{URL: "rediss://r:6379", TLS: RedisTLSConfig{CAFile: notPEM}}, "redis.tls.caFile", "no PEM certificate"},
		{"key does not match", RedisConfig{URL: "rediss://r:6379", TLS: RedisTLSConfig{CertFile: tlsf.ClientCert, KeyFile: tlsf.ServerKey}}, "redis.tls.certFile", "private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Check()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.wantKey || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Fatalf("Check = %v, want key %s with %q", err, tc.wantKey, tc.wantMsg)
			}
		})
	}
}

// useStore runs the operations of every Redis user once, keys under "t:":
// two sessions of one user at a cap of one (the first evicted, its ID
// published), touched and deleted; a rate-limit check; a resolver cache
// entry written and read.
func useStore(ctx context.Context, rdb redis.UniversalClient, id string) error {
	st := NewRedisSessions(rdb, SessionLimits{MaxPerUser: 1}, "t:", nil)
	if _, err := st.Create(ctx, Session{ID: id, Owner: "jane", Protocol: "2025-06-18"}); err != nil {
		return err
	}
	ev, err := st.Create(ctx, Session{ID: id + "-2", Owner: "jane", Protocol: "2025-06-18"})
	if err != nil {
		return err
	}
	if len(ev) != 1 || ev[0].ID != id {
		return fmt.Errorf("evicted %+v, want %s", ev, id)
	}
	if _, err := st.Touch(ctx, id+"-2"); err != nil {
		return err
	}
	if _, err := st.Delete(ctx, id+"-2"); err != nil {
		return err
	}
	lim, err := ratelimit.NewRedis(ratelimit.Config{}, ratelimit.RedisOptions{Client: rdb, KeyPrefix: "t:"})
	if err != nil {
		return err
	}
	if d, err := lim.Allow(ctx, ratelimit.UserKey("jane", ""), 1); err != nil || !d.Allowed {
		return fmt.Errorf("rate limit: %+v %w", d, err)
	}
	rc := NewRedisResolverCache(rdb, "t:")
	u := identity.CachedUser{Ref: "user:default/jane", Owners: []string{"user:default/jane"}}
	if err := rc.Set(ctx, id, u, time.Minute); err != nil {
		return err
	}
	if got, ok, err := rc.Get(ctx, id); err != nil || !ok || got.Ref != u.Ref {
		return fmt.Errorf("resolver cache: %+v %v %w", got, ok, err)
	}
	return Ping(ctx, rdb)
}

func TestRedisTLS(t *testing.T) {
	ctx := context.Background()
	files := redistest.NewTLSFiles(t)
	t.Run("server certificate checked against tls.caFile", func(t *testing.T) {
		srv := redistest.StartWith(t, redistest.Options{TLS: files})
		good, err := NewRedisClient(RedisConfig{URL: srv.URL(), TLS: RedisTLSConfig{CAFile: files.CA}})
		if err != nil {
			t.Fatal(err)
		}
		defer good.Close()
		if err := useStore(ctx, good, "tls-1"); err != nil {
			t.Fatalf("TLS with the CA file: %v", err)
		}
		// The system roots do not know the test CA: refused.
		sys, err := NewRedisClient(RedisConfig{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		defer sys.Close()
		if err := Ping(ctx, sys); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("TLS without the CA: %v, want a certificate error", err)
		}
		// Another CA: refused too.
		other := redistest.NewTLSFiles(t)
		wrong, err := NewRedisClient(RedisConfig{URL: srv.URL(), TLS: RedisTLSConfig{CAFile: other.CA}})
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		if err := Ping(ctx, wrong); err == nil {
			t.Fatal("TLS with another CA answered")
		}
		// A plain connection to the TLS port is no connection.
		plain, err := NewRedisClient(RedisConfig{URL: "redis://" + srv.Addr() + "/0"})
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		if err := Ping(ctx, plain); err == nil {
			t.Fatal("plain text to a TLS port answered")
		}
		// A server name the certificate does not carry: refused.
		named, err := NewRedisClient(RedisConfig{URL: srv.URL(), TLS: RedisTLSConfig{CAFile: files.CA, ServerName: "redis.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		defer named.Close()
		if err := Ping(ctx, named); err == nil {
			t.Fatal("TLS with a server name the certificate lacks answered")
		}
	})
	t.Run("client certificate when the server requires one", func(t *testing.T) {
		srv := redistest.StartWith(t, redistest.Options{TLS: files, Args: []string{"--tls-auth-clients", "yes"}})
		without, err := NewRedisClient(RedisConfig{URL: srv.URL(), TLS: RedisTLSConfig{CAFile: files.CA}})
		if err != nil {
			t.Fatal(err)
		}
		defer without.Close()
		if err := Ping(ctx, without); err == nil {
			t.Fatal("no client certificate, yet the server answered")
		}
		with, err := NewRedisClient(RedisConfig{URL: srv.URL(),
			TLS: RedisTLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}})
		if err != nil {
			t.Fatal(err)
		}
		defer with.Close()
		if err := useStore(ctx, with, "tls-2"); err != nil {
			t.Fatalf("with the client certificate: %v", err)
		}
	})
}

func TestRedisACLPasswordFile(t *testing.T) {
	ctx := context.Background()
	const pw1, pw2 = "first-Passw0rd-of-app", "second-Passw0rd-of-app"
	// app holds the ACL docs/replicas.md recommends, for the key prefix
	// "t:" that useStore uses; admin rotates its password.
	srv := redistest.StartWith(t, redistest.Options{Args: []string{
		"--user", "default", "off",
		"--user", "app", "on", ">" + pw1, "~t:*", "~rate:t:*", "~{t:session}:*", "&t:*", "&{t:session}:*", "+@all", "-@dangerous",
		"--user", "admin", "on", ">admin-password-0123", "~*", "&*", "+@all",
	}})
	pwFile := writeFile(t, "redis-password", pw1+"\n")
	cfg := RedisConfig{URL: srv.URL(), Username: "app", PasswordFile: pwFile}
	rdb, err := NewRedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := useStore(ctx, rdb, "acl-1"); err != nil {
		t.Fatalf("ACL user with the password from the file: %v", err)
	}

	// No password: the server refuses (the default user is off).
	anon, err := NewRedisClient(RedisConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := Ping(ctx, anon); err == nil {
		t.Fatal("no credentials, yet the server answered")
	}
	// A wrong password: refused, and the error does not show it.
	wrongFile := writeFile(t, "wrong", "not-the-password\n")
	wrong, err := NewRedisClient(RedisConfig{URL: srv.URL(), Username: "app", PasswordFile: wrongFile})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	err = Ping(ctx, wrong)
	if err == nil {
		t.Fatal("a wrong password answered")
	}
	if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), pw1) {
		t.Fatalf("the error shows a password: %v", err)
	}

	// Rotation: Redis gets the new password, the file follows; new
	// connections use it without a new client.
	// The ACL keeps app to its own keys.
	if err := rdb.Set(ctx, "other:key", "x", time.Minute).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("a key outside the prefix: %v, want NOPERM", err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "admin", Password: "admin-password-0123"})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "resetpass", ">"+pw2).Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(pw2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "USER", "app").Err(); err != nil {
		t.Fatal(err)
	}
	var last error
	for range 3 { // the first command may meet a killed pooled connection
		if last = useStore(ctx, rdb, "acl-2"); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("after rotating the password file: %v", last)
	}
}
