package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
)

// Backstage's catalog database in the bench.
//
// With --backstage-db memory, Backstage keeps its catalog in SQLite in
// memory, as the e2e tests do, and ingests the generated catalog on every
// run (about 60 entities a second). That does not reach 100,000 entities:
// on SQLite, Backstage's deferred stitching falls to about 8 entities a
// second at that size (its queries scan tables), three and a half hours.
//
// With --backstage-db postgres (the default), the bench runs a PostgreSQL
// server of its own (the Debian package; one throwaway cluster per catalog
// size, in tmpfs when the machine has one, fsync off: nothing in it must
// survive a crash), as production Backstage does. Ingestion then runs at
// about 80 entities a second, and the cluster is kept in the database
// cache, under .cache/bench-backstage/<scale>-<key>/: the catalog files
// (Backstage's locations must keep their paths, or it would ingest again)
// and pgdata, the cluster as it stood when Backstage had ingested the
// catalog. A later run copies pgdata, pushes every entity's next refresh
// out (so Backstage does no background processing), and boots Backstage
// on it in seconds. The key hashes everything the database depends on:
// the generated files, the secrets fixture, Backstage's packages
// (package-lock.json) and app-config.yaml, and the repository's path (the
// fixture's location is absolute).

// Backstage database kinds (--backstage-db).
const (
	dbMemory   = "memory"
	dbPostgres = "postgres"
)

// shmDir is the machine's tmpfs, where live clusters go when it exists.
const shmDir = "/dev/shm"

// pgTimeout bounds one PostgreSQL tool run (initdb, start, stop, psql).
const pgTimeout = 2 * time.Minute

// dbPlan is where one scale's Backstage keeps its catalog.
type dbPlan struct {
	// Env is the APP_CONFIG_backend_database value pointing Backstage at
	// the cluster.
	Env string
	// Hit is true when the cluster is a copy from the cache.
	Hit bool
	// save, on a miss, stores the cluster in the cache; Backstage must be
	// stopped first. It restarts the cluster.
	save func(ctx context.Context) error
	// close stops the cluster and removes it; Backstage must be stopped
	// first. It may be called more than once.
	close func()
}

// planDB prepares scale n's database for cat: nil with --backstage-db
// memory; otherwise a running cluster, copied from the cache when it holds
// one (cat's files then point at the cached copies on both paths).
func (b *bench) planDB(ctx context.Context, cat *genCatalog, n int) (*dbPlan, error) {
	if b.o.backstageDB == dbMemory {
		return nil, nil
	}
	key, err := b.catalogKey(cat)
	if err != nil {
		return nil, err
	}
	cache := filepath.Join(b.o.dbCache, fmt.Sprintf("%d-%s", n, key[:16]))
	files := filepath.Join(cache, "catalog")
	saved := filepath.Join(cache, "pgdata")
	if err := os.MkdirAll(files, 0o755); err != nil {
		return nil, fmt.Errorf("benchcmd: database cache: %w", err)
	}
	for i, f := range cat.Files {
		dst := filepath.Join(files, filepath.Base(f))
		if err := copyFile(f, dst); err != nil {
			return nil, fmt.Errorf("benchcmd: database cache: %w", err)
		}
		cat.Files[i] = dst
	}
	base := b.tmp
	if st, err := os.Stat(shmDir); err == nil && st.IsDir() {
		base = shmDir
	}
	live, err := os.MkdirTemp(base, fmt.Sprintf("backstage-mcp-bench-pg-%d-", n))
	if err != nil {
		return nil, fmt.Errorf("benchcmd: %w", err)
	}
	pg, err := newPostgres(live)
	if err != nil {
		_ = os.RemoveAll(live)
		return nil, err
	}
	plan := &dbPlan{Env: pg.env(), close: sync.OnceFunc(func() {
		pg.stop(context.Background())
		_ = os.RemoveAll(live)
	})}
	b.onExit(plan.close)
	_, statErr := os.Stat(filepath.Join(saved, "PG_VERSION"))
	plan.Hit = statErr == nil
	if plan.Hit {
		t0 := time.Now()
		if err := cpTree(ctx, saved, pg.data); err != nil {
			return nil, fmt.Errorf("benchcmd: database cache: %w", err)
		}
		if err := pg.start(ctx); err != nil {
			return nil, err
		}
		if err := pg.psql(ctx, "backstage_plugin_catalog", "UPDATE refresh_state SET next_update_at = now() + interval '3650 days'"); err != nil {
			return nil, err
		}
		b.log.Info("catalog database from the cache", "cache", cache, "took", time.Since(t0).Round(time.Millisecond))
		return plan, nil
	}
	if err := pg.initdb(ctx); err != nil {
		return nil, err
	}
	if err := pg.start(ctx); err != nil {
		return nil, err
	}
	b.log.Info("catalog database not cached yet: Backstage ingests the catalog into a new cluster, then it is saved", "cache", cache)
	plan.save = func(ctx context.Context) error {
		pg.stop(ctx)
		part := saved + ".part"
		_ = os.RemoveAll(part)
		if err := cpTree(ctx, pg.data, part); err != nil {
			return fmt.Errorf("benchcmd: database cache: %w", err)
		}
		if err := os.Rename(part, saved); err != nil {
			return fmt.Errorf("benchcmd: database cache: %w", err)
		}
		b.log.Info("catalog database saved to the cache", "dir", saved)
		return pg.start(ctx)
	}
	return plan, nil
}

// catalogKey hashes what a catalog database depends on.
func (b *bench) catalogKey(cat *genCatalog) (string, error) {
	h := sha256.New()
	add := func(path string) error {
		f, err := os.Open(path) //nolint:gosec // the bench's own files
		if err != nil {
			return fmt.Errorf("benchcmd: database cache key: %w", err)
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", filepath.Base(path))
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("benchcmd: database cache key: %w", err)
		}
		return nil
	}
	dir := harness.BackendDir(b.root)
	paths := append([]string{}, cat.Files...)
	paths = append(paths, harness.SecretsFixture(b.root), filepath.Join(dir, "package-lock.json"), filepath.Join(dir, "app-config.yaml"))
	for _, p := range paths {
		if err := add(p); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(h, "root\x00%s", b.root)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// postgres is one throwaway PostgreSQL cluster: data directory, Unix
// socket and log under dir, a free loopback port, user backstage with
// trust authentication (loopback only).
type postgres struct {
	bin  string // the server's bin directory
	dir  string
	data string
	port int
}

func newPostgres(dir string) (*postgres, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		return nil, errors.New("benchcmd: --backstage-db postgres needs PostgreSQL (Debian package postgresql; `make bench-e2e` installs it)")
	}
	sort.Strings(bins)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &postgres{bin: filepath.Dir(bins[len(bins)-1]), dir: dir, data: filepath.Join(dir, "data"), port: port}, nil
}

// env is Backstage's database configuration for the cluster.
func (p *postgres) env() string {
	return fmt.Sprintf(`{"client":"pg","connection":{"host":"127.0.0.1","port":%d,"user":"backstage","password":"unused-trust-auth"}}`, p.port)
}

// run runs a command; as root, as the postgres user (PostgreSQL refuses
// root), with dir handed to that user first.
func (p *postgres) run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		if out, err := exec.CommandContext(ctx, "chown", "-R", "postgres:postgres", p.dir).CombinedOutput(); err != nil { //nolint:gosec // the bench's own directory
			return fmt.Errorf("benchcmd: chown %s: %w: %s", p.dir, err, out)
		}
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...) //nolint:gosec // fixed tools, the bench's own paths
	} else {
		cmd = exec.CommandContext(ctx, name, args...) //nolint:gosec // as above
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("benchcmd: %s: %w: %s", filepath.Base(name), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (p *postgres) initdb(ctx context.Context) error {
	return p.run(ctx, filepath.Join(p.bin, "initdb"), "-D", p.data, "-U", "backstage", "--auth=trust", "-E", "UTF8", "--no-sync")
}

// start starts the server: loopback only, its socket in dir, and no
// durability (fsync, synchronous commit and full-page writes off).
func (p *postgres) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", p.port, p.dir)
	return p.run(ctx, filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-o", opts, "-l", filepath.Join(p.dir, "postgres.log"), "-w", "start")
}

// stop stops the server (fast shutdown); it does nothing when stopped.
func (p *postgres) stop(ctx context.Context) {
	_ = p.run(ctx, filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-m", "fast", "-w", "stop")
}

// psql runs one SQL statement in database db.
func (p *postgres) psql(ctx context.Context, db, sql string) error {
	return p.run(ctx, filepath.Join(p.bin, "psql"), "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "backstage", "-d", db, "-v", "ON_ERROR_STOP=1", "-qc", sql)
}

// cpTree copies directory src to dst (cp -a: owners and modes kept).
func cpTree(ctx context.Context, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil { //nolint:gosec // the bench's own paths
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, out)
	}
	return nil
}

// copyFile copies src to dst (replaced), through a temporary name.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src) //nolint:gosec // the bench's own files
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp) //nolint:gosec // as above
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}
