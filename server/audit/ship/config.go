package ship

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Format is what a sink receives for each record.
type Format string

// Formats.
const (
	// FormatNative is the audit file's own JSON line, hash and prevHash
	// included, so the receiver can verify the chain.
	FormatNative Format = "native"
	// FormatOCSF is an OCSF 1.3 API Activity event (class_uid 6003).
	FormatOCSF Format = "ocsf"
	// FormatECS is an Elastic Common Schema 8.x document.
	FormatECS Format = "ecs"
)

// Formats lists the valid formats.
func Formats() []Format { return []Format{FormatNative, FormatOCSF, FormatECS} }

// SinkType names a kind of sink.
type SinkType string

// Sink types.
const (
	SinkStdout SinkType = "stdout"
	SinkSyslog SinkType = "syslog"
	SinkOTLP   SinkType = "otlp"
	SinkHEC    SinkType = "hec"
)

// SinkTypes lists the valid sink types.
func SinkTypes() []SinkType { return []SinkType{SinkStdout, SinkSyslog, SinkOTLP, SinkHEC} }

// Config configures the export of the audit trail.
type Config struct {
	// Sinks are where records are sent besides the audit file. Each sink
	// reads the file on its own and keeps its own position, so a sink that
	// is down delays only itself.
	Sinks []SinkConfig `yaml:"sinks"`
	// PollInterval is how often a sink's shipper looks for new records when
	// it has sent everything. Default 200ms.
	PollInterval time.Duration `yaml:"pollInterval"`
	// BatchSize is the most records sent in one request. Default 500.
	BatchSize int `yaml:"batchSize"`
	// MaxBatchBytes caps the encoded size of one batch (a larger single
	// record is sent alone). Default 1 MiB.
	MaxBatchBytes int `yaml:"maxBatchBytes"`
	// SendTimeout bounds one send, acknowledgement included. Default 10s.
	SendTimeout time.Duration `yaml:"sendTimeout"`
	// MaxBackoff is the longest wait between two attempts to send a batch
	// that failed. Default 30s.
	MaxBackoff time.Duration `yaml:"maxBackoff"`
}

// SinkConfig configures one sink.
type SinkConfig struct {
	// Name names the sink in logs, metrics and its state file
	// (.AUDITFILE.ship-NAME.json beside the audit file). Default: its type.
	// Unique.
	Name string `yaml:"name"`
	// Type is stdout, syslog, otlp or hec.
	Type SinkType `yaml:"type"`
	// Format overrides audit.format for this sink: native, ocsf or ecs.
	Format Format `yaml:"format"`
	// Address is host:port of the syslog receiver (RFC 5424 messages over
	// TCP, octet-counting framing, RFC 6587).
	Address string `yaml:"address"`
	// URL is the OTLP/HTTP logs endpoint, e.g.
	// https://collector:4318/v1/logs, or the base URL of the HTTP event
	// collector, e.g. https://splunk:8088.
	URL string `yaml:"url"`
	// TLS configures TLS towards the receiver. For syslog it is used when
	// tls.enabled is true; for otlp and hec when the URL is https.
	TLS TLSConfig `yaml:"tls"`
	// TokenFile is the file holding the HEC token (read before each batch,
	// so a rotated token is picked up; never logged).
	TokenFile string `yaml:"tokenFile"`
	// HeaderFiles are HTTP headers for otlp and hec whose values are read
	// from files, e.g. {Authorization: /run/secrets/otlp-auth}; never
	// logged.
	HeaderFiles map[string]string `yaml:"headerFiles"`
	// Ack turns on HEC indexer acknowledgement: a batch counts as delivered
	// only when the collector reports it indexed (the token must have
	// acknowledgement enabled).
	Ack bool `yaml:"ack"`
	// Index is the HEC index; empty means the token's default.
	Index string `yaml:"index"`
	// SourceType is the HEC sourcetype. Default "backstage-mcp:audit".
	SourceType string `yaml:"sourceType"`
	// Facility is the syslog facility number. Default 13 (log audit).
	Facility int `yaml:"facility"`
}

// TLSConfig configures a TLS client.
type TLSConfig struct {
	// Enabled turns TLS on for syslog.
	Enabled bool `yaml:"enabled"`
	// CAFile holds the PEM certificates that may sign the receiver's
	// certificate; empty means the system roots.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile hold a client certificate and key (PEM) for
	// receivers that require mutual TLS.
	CertFile string `yaml:"certFile"`
	// KeyFile is the client certificate's private key (PEM).
	KeyFile string `yaml:"keyFile"`
	// ServerName is the name the receiver's certificate must carry;
	// default: the host of the address or URL.
	ServerName string `yaml:"serverName"`
}

// Defaults.
const (
	DefaultPollInterval  = 200 * time.Millisecond
	DefaultBatchSize     = 500
	DefaultMaxBatchBytes = 1 << 20
	DefaultTimeout       = 10 * time.Second
	DefaultMaxBackoff    = 30 * time.Second
	DefaultFacility      = 13
	DefaultSourceType    = "backstage-mcp:audit"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = DefaultTimeout
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	sinks := make([]SinkConfig, len(c.Sinks))
	for i, s := range c.Sinks {
		if s.Name == "" {
			s.Name = string(s.Type)
		}
		if s.Facility == 0 {
			s.Facility = DefaultFacility
		}
		if s.SourceType == "" {
			s.SourceType = DefaultSourceType
		}
		sinks[i] = s
	}
	c.Sinks = sinks
	return c
}

// ValidFormat reports an error for a format that is not empty, native, ocsf
// or ecs.
func ValidFormat(f Format) error {
	switch f {
	case "", FormatNative, FormatOCSF, FormatECS:
		return nil
	}
	return fmt.Errorf("ship: unknown format %q (want native, ocsf or ecs)", f)
}

// Validate reports the first configuration error, after defaults.
func (c Config) Validate() error {
	c = c.WithDefaults()
	seen := map[string]bool{}
	for i, s := range c.Sinks {
		where := fmt.Sprintf("sinks[%d]", i)
		if s.Name != "" {
			where = fmt.Sprintf("sinks[%d] (%s)", i, s.Name)
		}
		if err := s.validate(); err != nil {
			return fmt.Errorf("ship: %s: %w", where, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("ship: %s: name %q used twice (give each sink its own name)", where, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func (s SinkConfig) validate() error {
	if !validName(s.Name) {
		return fmt.Errorf("name %q: use letters, digits, '-' and '_' (at most 64)", s.Name)
	}
	if err := ValidFormat(s.Format); err != nil {
		return err
	}
	switch s.Type {
	case SinkStdout:
	case SinkSyslog:
		if _, _, err := net.SplitHostPort(s.Address); err != nil || s.Address == "" {
			return fmt.Errorf("syslog needs address host:port (got %q)", s.Address)
		}
		if s.Facility < 0 || s.Facility > 23 {
			return fmt.Errorf("facility %d out of range 0-23", s.Facility)
		}
	case SinkOTLP, SinkHEC:
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s needs url http(s)://host[:port]/... (got %q)", s.Type, s.URL)
		}
		if u.User != nil {
			return errors.New("url must not hold credentials: use tokenFile or headerFiles")
		}
		if s.Type == SinkHEC && s.TokenFile == "" {
			return errors.New("hec needs tokenFile")
		}
	case "":
		return errors.New("type missing (stdout, syslog, otlp or hec)")
	default:
		return fmt.Errorf("unknown type %q (want stdout, syslog, otlp or hec)", s.Type)
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		return errors.New("tls.certFile and tls.keyFile go together")
	}
	return nil
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
