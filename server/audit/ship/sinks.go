package ship

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// NewSink builds the sink sc describes.
func NewSink(ctx context.Context, sc SinkConfig, cfg Config, opts Options) (Sink, error) {
	switch sc.Type {
	case SinkStdout:
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		return &writerSink{w: w}, nil
	case SinkSyslog:
		return newSyslogSink(sc, cfg, opts.Host)
	case SinkHEC:
		return newHECSink(sc, cfg, opts.Host)
	case SinkOTLP:
		return newOTLPSink(ctx, sc, cfg, opts)
	}
	return nil, fmt.Errorf("unknown sink type %q", sc.Type)
}

// writerSink writes one body per line to a writer (stdout).
type writerSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *writerSink) Send(_ context.Context, batch []Event) error {
	var b bytes.Buffer
	for _, e := range batch {
		b.Write(e.Body)
		b.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("ship: stdout: %w", err)
	}
	return nil
}

func (s *writerSink) Close() error { return nil }

// tlsConfig builds a TLS client configuration (TLS 1.2 or later).
func tlsConfig(tc TLSConfig, host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if tc.ServerName != "" {
		c.ServerName = tc.ServerName
	}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.caFile %s: no PEM certificate in it", tc.CAFile)
		}
		c.RootCAs = pool
	}
	if tc.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certFile/keyFile: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// readSecret reads a secret from a file, trimmed of surrounding white
// space. Its errors name the file, never the content.
func readSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	if len(b) > 16<<10 {
		return "", fmt.Errorf("secret file %s larger than 16 KiB", file)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("secret file " + file + " holds more than one line")
	}
	return s, nil
}

// headerValues reads the headers whose values are in files.
func headerValues(files map[string]string) (map[string]string, error) {
	h := make(map[string]string, len(files))
	for name, file := range files {
		v, err := readSecret(file)
		if err != nil {
			return nil, fmt.Errorf("headerFiles[%s]: %w", name, err)
		}
		h[name] = v
	}
	return h, nil
}

// clip shortens a receiver's answer for an error message.
func clip(b []byte) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
