package ship

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// testCerts are a CA and a server certificate for 127.0.0.1 and localhost,
// written as PEM files.
type testCerts struct{ ca, cert, key string }

func makeCerts(t testing.TB) testCerts {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	c := testCerts{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	write := func(p, typ string, der []byte) {
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(c.ca, "CERTIFICATE", caDER)
	write(c.cert, "CERTIFICATE", srvDER)
	write(c.key, "EC PRIVATE KEY", keyDER)
	return c
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rsyslog is a real rsyslogd receiving RFC 5424 over TCP (or TLS) and
// writing what it parsed, one message per line, to out.
type rsyslog struct {
	bin, dir, conf, out string
	port                int
	cmd                 *exec.Cmd
}

func startRsyslog(t testing.TB, certs *testCerts) *rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		// Debian puts it in /usr/sbin, which a user's PATH may lack.
		bin = "/usr/sbin/rsyslogd"
		if _, err := os.Stat(bin); err != nil {
			testtools.Missing(t, "rsyslogd (rsyslog)")
		}
	}
	if certs != nil {
		mods, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
		more, _ := filepath.Glob("/usr/lib/rsyslog/lmnsd_gtls.so")
		if len(mods)+len(more) == 0 {
			testtools.Missing(t, "rsyslog's TLS driver lmnsd_gtls.so (rsyslog-gnutls)")
		}
	}
	r := &rsyslog{bin: bin, dir: t.TempDir(), port: freePort(t)}
	r.out = filepath.Join(r.dir, "out.log")
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	var c strings.Builder
	fmt.Fprintf(&c, "global(maxMessageSize=\"256k\")\nglobal(workDirectory=%q)\n", r.dir)
	if certs != nil {
		fmt.Fprintf(&c, "global(DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)\n",
			certs.ca, certs.cert, certs.key)
		c.WriteString("module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n")
	} else {
		c.WriteString("module(load=\"imtcp\")\n")
	}
	fmt.Fprintf(&c, "input(type=\"imtcp\" port=\"%d\" address=\"127.0.0.1\")\n", r.port)
	c.WriteString("template(name=\"t\" type=\"string\" string=\"%pri%|%hostname%|%app-name%|%procid%|%msgid%|%timereported:::date-rfc3339%|%msg%\\n\")\n")
	fmt.Fprintf(&c, "action(type=\"omfile\" file=%q template=\"t\")\n", r.out)
	if err := os.WriteFile(r.conf, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslog) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *rsyslog) start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "pid"))
	logf, _ := os.Create(filepath.Join(r.dir, "rsyslogd.stderr"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.stderr"))
			t.Fatalf("rsyslogd did not listen on %s: %s", r.addr(), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rsyslog) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

// syslogLine is one message as rsyslog parsed it.
type syslogLine struct {
	pri, host, app, procid, msgid, time string
	body                                map[string]any
}

func (r *rsyslog) lines(t *testing.T) []syslogLine {
	t.Helper()
	f, err := os.Open(r.out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []syslogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "|", 7)
		if len(p) != 7 {
			t.Fatalf("rsyslog wrote %q", sc.Text())
		}
		l := syslogLine{pri: p[0], host: p[1], app: p[2], procid: p[3], msgid: p[4], time: p[5]}
		if err := json.Unmarshal([]byte(p[6]), &l.body); err != nil {
			t.Fatalf("message is not JSON: %v: %q", err, p[6])
		}
		out = append(out, l)
	}
	return out
}

func (r *rsyslog) seqs(t *testing.T, key ...string) []uint64 {
	var out []uint64
	for _, l := range r.lines(t) {
		out = append(out, uint64(get(t, l.body, key...).(float64)))
	}
	return out
}

func runExporter(t *testing.T, path string, format Format, sinks ...SinkConfig) *Exporter {
	t.Helper()
	cfg := fastCfg
	cfg.Sinks = sinks
	e, err := Start(context.Background(), Options{Path: path, Format: format, Config: cfg, Host: "replica-1", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func TestSyslogTCPToRsyslog(t *testing.T) {
	rs := startRsyslog(t, nil)
	tr := newTrail(t, 8<<10)
	tr.append(t, 30)
	e := runExporter(t, tr.path, FormatOCSF, SinkConfig{Type: SinkSyslog, Address: rs.addr()})
	waitFor(t, "30 messages in rsyslog", 10*time.Second, func() bool { return len(rs.lines(t)) >= 30 })
	lines := rs.lines(t)
	l := lines[0]
	// facility 13 (log audit) * 8 + severity 6 (informational)
	if l.pri != "110" || l.host != "replica-1" || l.app != "backstage-mcp" || l.procid != "-" || l.msgid != "call" {
		t.Fatalf("header as rsyslog parsed it: %+v", l)
	}
	if get(t, l.body, "class_uid") != 6003.0 || get(t, l.body, "actor", "user", "email_addr") != "jane@example.com" {
		t.Fatalf("body: %v", l.body)
	}
	checkSeqs(t, rs.seqs(t, "metadata", "sequence"), 30)

	// The receiver goes away and comes back: nothing written meanwhile is lost.
	rs.stop()
	tr.append(t, 20)
	waitFor(t, "a failed send", 10*time.Second, func() bool { return e.Stats()[0].Failures > 0 })
	rs.start(t)
	waitFor(t, "50 messages", 15*time.Second, func() bool { return len(rs.lines(t)) >= 50 })
	checkSeqs(t, rs.seqs(t, "metadata", "sequence"), 50)
}

func TestSyslogTLSToRsyslog(t *testing.T) {
	certs := makeCerts(t)
	rs := startRsyslog(t, &certs)
	tr := newTrail(t, -1)
	tr.append(t, 25)
	runExporter(t, tr.path, FormatECS, SinkConfig{
		Type: SinkSyslog, Address: rs.addr(), Facility: 10,
		TLS: TLSConfig{Enabled: true, CAFile: certs.ca, ServerName: "localhost"},
	})
	waitFor(t, "25 messages over TLS", 10*time.Second, func() bool { return len(rs.lines(t)) >= 25 })
	l := rs.lines(t)[0]
	if l.pri != "86" || get(t, l.body, "ecs", "version") != ECSVersion { // authpriv (10) * 8 + 6
		t.Fatalf("got %+v", l)
	}
	checkSeqs(t, rs.seqs(t, "event", "sequence"), 25)
}

func TestSyslogTLSRefusesUnknownCA(t *testing.T) {
	certs := makeCerts(t)
	other := makeCerts(t)
	rs := startRsyslog(t, &certs)
	tr := newTrail(t, -1)
	tr.append(t, 3)
	e := runExporter(t, tr.path, FormatNative, SinkConfig{
		Type: SinkSyslog, Address: rs.addr(), TLS: TLSConfig{Enabled: true, CAFile: other.ca},
	})
	waitFor(t, "failures", 10*time.Second, func() bool { return e.Stats()[0].Failures >= 2 })
	if n := len(rs.lines(t)); n != 0 {
		t.Fatalf("%d messages reached a receiver whose certificate the sink must refuse", n)
	}
}
