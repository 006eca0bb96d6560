package ship

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// syslogSink sends RFC 5424 messages over TCP or TLS with octet-counting
// framing (RFC 6587 section 3.4.1, as RFC 5425 prescribes for TLS). Plain
// syslog has no application acknowledgement: a batch counts as delivered
// once the whole of it was written to the connection. Before each batch
// the connection is checked for a close by the receiver, so a receiver that
// went away costs a reconnect, not the batch.
type syslogSink struct {
	addr     string
	tls      *tls.Config // nil for plain TCP
	facility int
	host     string
	timeout  time.Duration
	conn     net.Conn
}

func newSyslogSink(sc SinkConfig, cfg Config, host string) (*syslogSink, error) {
	s := &syslogSink{addr: sc.Address, facility: sc.Facility, host: headerField(host, 255), timeout: cfg.SendTimeout}
	if sc.TLS.Enabled {
		h, _, _ := net.SplitHostPort(sc.Address)
		c, err := tlsConfig(sc.TLS, h)
		if err != nil {
			return nil, err
		}
		s.tls = c
	}
	return s, nil
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII
// without spaces, at most n bytes, "-" when empty.
func headerField(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// syslogSeverity maps a record to a syslog severity.
func syslogSeverity(r *audit.Record) int {
	switch {
	case r.Decision.Canonical() == audit.DecisionFailed:
		return 4 // warning
	case failed(r):
		return 5 // notice
	}
	return 6 // informational
}

// appendMessage appends one framed message: "LEN <PRI>1 TIMESTAMP HOST
// APP PROCID MSGID - MSG".
func (s *syslogSink) appendMessage(b *bytes.Buffer, e Event) {
	r := e.Record
	var m bytes.Buffer
	m.WriteByte('<')
	m.WriteString(strconv.Itoa(s.facility*8 + syslogSeverity(r)))
	m.WriteString(">1 ")
	m.WriteString(r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
	m.WriteByte(' ')
	m.WriteString(s.host)
	m.WriteString(" backstage-mcp - ")
	m.WriteString(headerField(string(r.Type), 32))
	m.WriteString(" - ")
	m.Write(e.Body)
	b.WriteString(strconv.Itoa(m.Len()))
	b.WriteByte(' ')
	b.Write(m.Bytes())
}

func (s *syslogSink) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		td := &tls.Dialer{NetDialer: d, Config: s.tls}
		c, err = td.DialContext(ctx, "tcp", s.addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("ship: syslog: connect %s: %w", s.addr, err)
	}
	s.conn = c
	return nil
}

// alive reports whether the receiver still has the connection open: a
// syslog receiver never writes, so a read that does not time out at once
// means it closed (or broke) the connection.
func (s *syslogSink) alive() bool {
	if err := s.conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var one [1]byte
	_, err := s.conn.Read(one[:])
	_ = s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *syslogSink) Send(ctx context.Context, batch []Event) error {
	if s.conn != nil && !s.alive() {
		_ = s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	for _, e := range batch {
		s.appendMessage(&b, e)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.timeout)
	}
	_ = s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(b.Bytes()); err != nil {
		_ = s.conn.Close()
		s.conn = nil
		return fmt.Errorf("ship: syslog: write to %s: %w", s.addr, err)
	}
	return nil
}

func (s *syslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("ship: syslog: close: %w", err)
	}
	return nil
}
