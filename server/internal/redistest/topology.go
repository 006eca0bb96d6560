package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TLSFiles are PEM files made for one test: a certificate authority, a
// server certificate it signed (for 127.0.0.1 and localhost) and a client
// certificate it signed.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// NewTLSFiles makes a CA and the server and client certificates it signs,
// in a temporary directory, valid for one hour.
func NewTLSFiles(t testing.TB) *TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := &TLSFiles{
		CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, f.CA, "CERTIFICATE", caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certPath, keyPath string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certPath, "CERTIFICATE", der)
		writePEM(t, keyPath, "PRIVATE KEY", kb)
	}
	leaf(2, "localhost", x509.ExtKeyUsageServerAuth, f.ServerCert, f.ServerKey)
	leaf(3, "redistest client", x509.ExtKeyUsageClientAuth, f.ClientCert, f.ClientKey)
	return f
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ClientConfig trusts the CA and presents the client certificate.
func (f *TLSFiles) ClientConfig() *tls.Config {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(f.CA); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey); err == nil {
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc
}

// SentinelSet is a primary, one replica and sentinels that watch them.
// Primary and Replica are the roles the servers were started in; after a
// failover ask Current.
type SentinelSet struct {
	MasterName string
	Primary    *Server
	Replica    *Server
	Sentinels  []*Server
}

// StartSentinelSet starts a primary, a replica of it and n sentinels
// (quorum n/2+1, down after 1 s), and waits until every sentinel knows the
// replica and the other sentinels, so that a failover can happen.
func StartSentinelSet(t testing.TB, masterName string, n int) *SentinelSet {
	t.Helper()
	ss := &SentinelSet{MasterName: masterName}
	ss.Primary = Start(t)
	ss.Replica = StartWith(t, Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(ss.Primary.Port())}})
	lines := []string{
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", masterName, ss.Primary.Port(), n/2+1),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", masterName),
		fmt.Sprintf("sentinel failover-timeout %s 10000", masterName),
	}
	for range n {
		ss.Sentinels = append(ss.Sentinels, StartWith(t, Options{Sentinel: lines}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ss.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return ss
}

// WaitReady waits until every sentinel names the same primary, knows one
// replica whose link to it is up and the other sentinels: a failover
// (or SENTINEL FAILOVER) can then promote that replica. It returns an
// error saying what was missing when ctx ends first.
func (ss *SentinelSet) WaitReady(ctx context.Context) error {
	n := len(ss.Sentinels)
	for {
		var missing string
		var master string
		for _, s := range ss.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second})
			m, err0 := sc.GetMasterAddrByName(ctx, ss.MasterName).Result()
			reps, err1 := sc.Replicas(ctx, ss.MasterName).Result()
			sens, err2 := sc.Sentinels(ctx, ss.MasterName).Result()
			_ = sc.Close()
			addr := ""
			if len(m) == 2 {
				addr = net.JoinHostPort(m[0], m[1])
			}
			switch {
			case err0 != nil || err1 != nil || err2 != nil:
				missing = fmt.Sprintf("sentinel %s: %v %v %v", s.Addr(), err0, err1, err2)
			case master != "" && addr != master:
				missing = fmt.Sprintf("sentinel %s names %s as primary, another %s", s.Addr(), addr, master)
			case len(reps) != 1 || !replicaUp(reps[0]):
				missing = fmt.Sprintf("sentinel %s does not know one replica with its link up: %v", s.Addr(), reps)
			case len(sens) != n-1:
				missing = fmt.Sprintf("sentinel %s knows %d other sentinels, want %d", s.Addr(), len(sens), n-1)
			}
			if missing != "" {
				break
			}
			master = addr
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: sentinels not ready for a failover: %s: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Current returns the server the sentinels name primary and the other
// one.
func (ss *SentinelSet) Current(ctx context.Context) (primary, replica *Server, err error) {
	addr, err := ss.MasterAddr(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch addr {
	case ss.Primary.Addr():
		return ss.Primary, ss.Replica, nil
	case ss.Replica.Addr():
		return ss.Replica, ss.Primary, nil
	}
	return nil, nil, fmt.Errorf("redistest: the sentinels name %s as primary, neither %s nor %s", addr, ss.Primary.Addr(), ss.Replica.Addr())
}

// replicaUp reports whether a SENTINEL REPLICAS entry is a replica whose
// link to the primary is up.
func replicaUp(r map[string]string) bool {
	return r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "down")
}

// SentinelAddrs are the sentinels' host:port.
func (ss *SentinelSet) SentinelAddrs() []string {
	var a []string
	for _, s := range ss.Sentinels {
		a = append(a, s.Addr())
	}
	return a
}

// MasterAddr asks the first sentinel that answers for the primary's
// address.
func (ss *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range ss.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second})
		a, err := sc.GetMasterAddrByName(ctx, ss.MasterName).Result()
		_ = sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("redistest: no sentinel names the primary: %w", last)
}

// StartCluster starts n cluster-enabled nodes, gives each an equal range
// of the 16384 slots, joins them and waits until every node reports
// cluster_state:ok. The nodes have no replicas.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	primaries, _ := StartClusterWithReplicas(t, n, false)
	return primaries
}

// StartClusterWithReplicas is StartCluster, and with replicas also one
// replica per primary (replicas[i] replicates primaries[i], its link up),
// so that a primary killed is replaced (cluster-node-timeout 2 s).
func StartClusterWithReplicas(t testing.TB, n int, replicas bool) (primaries, reps []*Server) {
	t.Helper()
	total := n
	if replicas {
		total = 2 * n
	}
	nodes := make([]*Server, total)
	for i := range nodes {
		nodes[i] = StartWith(t, Options{Cluster: true})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clients := make([]*redis.Client, total)
	for i, s := range nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		defer clients[i].Close()
	}
	const slots = 16384
	for i, c := range clients {
		if i < n {
			lo, hi := i*slots/n, (i+1)*slots/n-1
			if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
				t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, nodes[i].Addr(), err)
			}
		}
		if i > 0 {
			// CLUSTER MEET with the bus port: it is not port+10000 here.
			if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", nodes[i].Port(), nodes[i].bus).Err(); err != nil {
				t.Fatalf("redistest: CLUSTER MEET %s: %v", nodes[i].Addr(), err)
			}
		}
	}
	waitCluster := func(what string, ok func(c *redis.Client) bool) {
		for i, c := range clients {
			for !ok(c) {
				if ctx.Err() != nil {
					info, _ := c.ClusterNodes(context.Background()).Result()
					t.Fatalf("redistest: cluster node %s: %s not reached after 60s; CLUSTER NODES:\n%s", nodes[i].Addr(), what, info)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	known := "cluster_known_nodes:" + strconv.Itoa(total) + "\r"
	waitCluster("every node known", func(c *redis.Client) bool {
		info, err := c.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, known)
	})
	if replicas {
		for i := range n {
			id, err := clients[i].ClusterMyID(ctx).Result()
			if err != nil {
				t.Fatalf("redistest: CLUSTER MYID: %v", err)
			}
			for {
				err := clients[n+i].ClusterReplicate(ctx, id).Err()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("redistest: CLUSTER REPLICATE on %s: %v", nodes[n+i].Addr(), err)
				}
				time.Sleep(50 * time.Millisecond) // the node may not know the primary yet
			}
		}
		for i := n; i < total; i++ {
			for {
				info, err := clients[i].Info(ctx, "replication").Result()
				if err == nil && strings.Contains(info, "master_link_status:up") {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("redistest: cluster replica %s: link to its primary not up after 60s: %v\n%s", nodes[i].Addr(), err, info)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	waitCluster("cluster_state:ok", func(c *redis.Client) bool {
		info, err := c.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	if replicas {
		return nodes[:n], nodes[n:]
	}
	return nodes, nil
}
