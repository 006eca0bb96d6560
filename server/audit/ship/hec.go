package ship

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// hecSink posts batches to an HTTP event collector compatible with
// Splunk's (/services/collector/event). With Ack on, each request carries a
// channel and the batch counts as delivered only when the collector's
// /services/collector/ack reports its ackId indexed.
type hecSink struct {
	base      string
	tokenFile string
	headers   map[string]string
	index     string
	srcType   string
	host      string
	ack       bool
	channel   string
	client    *http.Client
}

func newHECSink(sc SinkConfig, cfg Config, host string) (*hecSink, error) {
	u, err := url.Parse(sc.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" {
		c, err := tlsConfig(sc.TLS, u.Hostname())
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = c
	}
	if _, err := readSecret(sc.TokenFile); err != nil {
		return nil, fmt.Errorf("tokenFile: %w", err)
	}
	h, err := headerValues(sc.HeaderFiles)
	if err != nil {
		return nil, err
	}
	return &hecSink{
		base: strings.TrimRight(sc.URL, "/"), tokenFile: sc.TokenFile, headers: h,
		index: sc.Index, srcType: sc.SourceType, host: host, ack: sc.Ack,
		channel: newChannel(), client: &http.Client{Transport: tr, Timeout: cfg.SendTimeout},
	}, nil
}

// newChannel returns a random GUID, as HEC channels must be.
func newChannel() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type hecEvent struct {
	Time       json.Number     `json:"time"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source"`
	SourceType string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
}

func (s *hecSink) request(ctx context.Context, path string, body []byte) (*http.Request, error) {
	token, err := readSecret(s.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("ship: hec: tokenFile: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ship: hec: %w", err)
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Splunk "+token)
	req.Header.Set("Content-Type", "application/json")
	if s.ack {
		req.Header.Set("X-Splunk-Request-Channel", s.channel)
	}
	return req, nil
}

// do sends a request and decodes a JSON answer into out.
func (s *hecSink) do(req *http.Request, out any) error {
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("ship: hec: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("ship: hec: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ship: hec: %s answered %d: %s", req.URL.Path, resp.StatusCode, clip(body))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("ship: hec: %s: answer is not JSON: %w", req.URL.Path, err)
		}
	}
	return nil
}

func (s *hecSink) Send(ctx context.Context, batch []Event) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, e := range batch {
		t := e.Record.Time
		ev := hecEvent{
			Time: json.Number(strconv.FormatFloat(float64(t.UnixMicro())/1e6, 'f', 6, 64)),
			Host: s.host, Source: "backstage-mcp", SourceType: s.srcType, Index: s.index,
			Event: e.Body,
		}
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("ship: hec: encode: %w", err)
		}
	}
	req, err := s.request(ctx, "/services/collector/event", b.Bytes())
	if err != nil {
		return err
	}
	var ans struct {
		Code  int    `json:"code"`
		Text  string `json:"text"`
		AckID *int64 `json:"ackId"`
	}
	if err := s.do(req, &ans); err != nil {
		return err
	}
	if ans.Code != 0 {
		return fmt.Errorf("ship: hec: code %d: %s", ans.Code, clip([]byte(ans.Text)))
	}
	if !s.ack {
		return nil
	}
	if ans.AckID == nil {
		return fmt.Errorf("ship: hec: ack is on but the collector returned no ackId (enable indexer acknowledgement on the token)")
	}
	return s.waitAck(ctx, *ans.AckID)
}

// waitAck polls /services/collector/ack until the collector reports id
// indexed or ctx ends.
func (s *hecSink) waitAck(ctx context.Context, id int64) error {
	body := []byte(`{"acks":[` + strconv.FormatInt(id, 10) + `]}`)
	wait := 50 * time.Millisecond
	for {
		req, err := s.request(ctx, "/services/collector/ack?channel="+s.channel, body)
		if err != nil {
			return err
		}
		var ans struct {
			Acks map[string]bool `json:"acks"`
		}
		if err := s.do(req, &ans); err != nil {
			return err
		}
		if ans.Acks[strconv.FormatInt(id, 10)] {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ship: hec: ackId %d not acknowledged in time: %w", id, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

func (s *hecSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
