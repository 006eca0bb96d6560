package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Requests per Per, with bursts of up to Burst.
type Rate struct {
	// Requests is how many requests are allowed per Per on average.
	Requests float64 `yaml:"requests"`
	// Per is the period Requests refers to, e.g. 1s or 1m.
	Per time.Duration `yaml:"per"`
	// Burst is the bucket size: how many requests may come at once after an
	// idle period. Zero means ceil(Requests), at least 1.
	Burst int `yaml:"burst"`
	// Unlimited disables this bucket. It must be set explicitly: a Rate
	// left empty in a configuration file is an error, never "no limit".
	Unlimited bool `yaml:"unlimited"`
}

// PerSecond returns a Rate of n requests per second with the given burst.
func PerSecond(n float64, burst int) Rate { return Rate{Requests: n, Per: time.Second, Burst: burst} }

// PerMinute returns a Rate of n requests per minute with the given burst.
func PerMinute(n float64, burst int) Rate { return Rate{Requests: n, Per: time.Minute, Burst: burst} }

// validate checks r; name is used in messages.
func (r Rate) validate(name string) error {
	if r.Unlimited {
		return nil
	}
	if r.Requests <= 0 || math.IsNaN(r.Requests) || math.IsInf(r.Requests, 0) {
		return fmt.Errorf("ratelimit: %s: requests must be a positive number (or set unlimited: true)", name)
	}
	if r.Per <= 0 {
		return fmt.Errorf("ratelimit: %s: per must be a positive duration such as 1s or 1m", name)
	}
	if r.Burst < 0 {
		return fmt.Errorf("ratelimit: %s: burst must not be negative", name)
	}
	return nil
}

// BurstSize is the bucket size of r: Burst, or ceil(Requests) when Burst
// is zero (0 when unlimited).
func (r Rate) BurstSize() int {
	_, b := r.limit()
	return b
}

// limit returns the rate.Limit and burst of r (r must be valid).
func (r Rate) limit() (rate.Limit, int) {
	if r.Unlimited {
		return rate.Inf, 0
	}
	burst := r.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(r.Requests)))
	}
	return rate.Limit(r.Requests / r.Per.Seconds()), burst
}

// Config configures Memory (and the limits a shared store would enforce).
// Zero fields take the defaults of DefaultConfig.
type Config struct {
	// DefaultClass is the rate class used when a call names none. It must
	// exist in Classes. Default "default".
	DefaultClass string `yaml:"defaultClass"`
	// Classes are the per-user buckets by rate class (the class comes from
	// policy): each user gets one bucket per class. Default: "low"
	// 30/min burst 10, "default" 120/min burst 30, "high" 600/min burst 100.
	Classes map[string]Rate `yaml:"classes"`
	// Agent is the bucket per agent client id, shared by all the users of
	// that agent. Default 1200/min burst 200.
	Agent Rate `yaml:"agent"`
	// Global is the one bucket shared by every call of this process (with a
	// shared store: of every replica). Default 100/s burst 200.
	Global Rate `yaml:"global"`
	// IdleTTL is how long a bucket must go unused before it may be evicted.
	// Only full buckets are evicted, so eviction never grants extra
	// requests. Default 10m.
	IdleTTL time.Duration `yaml:"idleTTL"`
	// MaxKeys caps the number of tracked buckets. At the cap a new key gets
	// a bucket only if an idle full bucket can be evicted; otherwise the call
	// is denied (see Memory). Default 100000.
	MaxKeys int `yaml:"maxKeys"`
	// Upstream configures the guard for calls towards Backstage.
	Upstream UpstreamConfig `yaml:"upstream"`

	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time `yaml:"-"`
}

// UpstreamConfig configures Upstream, the guard in front of Backstage.
// Zero fields take the defaults of DefaultConfig.
type UpstreamConfig struct {
	// MaxConcurrent caps concurrent upstream requests. Default 16.
	MaxConcurrent int `yaml:"maxConcurrent"`
	// MaxConcurrentQueries caps the concurrent requests that list
	// entities (searches and facets: calls made with a context from
	// AsQuery), which cost Backstage the most; each also takes one of
	// MaxConcurrent. A single Backstage process serves such requests one
	// JavaScript thread at a time: with more of them in flight each takes
	// longer and the slowest starve (measured at 30,000 entities, 16 at
	// once: REST answers of 17-35 s), while a few at a time give it the
	// same throughput and bounded latency. Default 4.
	MaxConcurrentQueries int `yaml:"maxConcurrentQueries"`
	// Rate caps the upstream request rate (cache hits and coalesced calls do
	// not count). Default 50/s burst 50.
	Rate Rate `yaml:"rate"`
	// Timeout bounds one upstream request, including the wait for a
	// concurrency slot and for the rate limiter. Default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL is how long a successful (2xx) or not-found (404) response
	// is reused for the same key. Negative disables the cache. Default 2s.
	CacheTTL time.Duration `yaml:"cacheTTL"`
	// CacheMaxEntries caps cached responses. Default 1024.
	CacheMaxEntries int `yaml:"cacheMaxEntries"`
	// CacheMaxBytes caps the total size of cached bodies. Default 32 MiB.
	CacheMaxBytes int64 `yaml:"cacheMaxBytes"`
	// CacheMaxEntryBytes is the largest body that is cached. Default 1 MiB.
	CacheMaxEntryBytes int64 `yaml:"cacheMaxEntryBytes"`

	// Now returns the current time for cache expiry; nil means time.Now.
	Now func() time.Time `yaml:"-"`
	// Observe, when set, is told for every call with a non-empty key
	// whether it was answered from the cache. It is the deterministic
	// timing class of an upstream answer (cached or not) that the
	// non-interference tests compare; it must not block.
	Observe func(key string, cached bool) `yaml:"-"`
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		DefaultClass: "default",
		Classes: map[string]Rate{
			"low":     PerMinute(30, 10),
			"default": PerMinute(120, 30),
			"high":    PerMinute(600, 100),
		},
		Agent:    PerMinute(1200, 200),
		Global:   PerSecond(100, 200),
		IdleTTL:  10 * time.Minute,
		MaxKeys:  100_000,
		Upstream: DefaultUpstreamConfig(),
	}
}

// DefaultUpstreamConfig returns the default upstream guard settings.
func DefaultUpstreamConfig() UpstreamConfig {
	return UpstreamConfig{
		MaxConcurrent:        16,
		MaxConcurrentQueries: 4,
		Rate:                 PerSecond(50, 50),
		Timeout:              15 * time.Second,
		CacheTTL:             2 * time.Second,
		CacheMaxEntries:      1024,
		CacheMaxBytes:        32 << 20,
		CacheMaxEntryBytes:   1 << 20,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DefaultClass == "" {
		c.DefaultClass = d.DefaultClass
	}
	if c.Classes == nil {
		c.Classes = d.Classes
	}
	if c.Agent == (Rate{}) {
		c.Agent = d.Agent
	}
	if c.Global == (Rate{}) {
		c.Global = d.Global
	}
	if c.IdleTTL <= 0 {
		c.IdleTTL = d.IdleTTL
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = d.MaxKeys
	}
	c.Upstream = c.Upstream.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c UpstreamConfig) withDefaults() UpstreamConfig {
	d := DefaultUpstreamConfig()
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = d.MaxConcurrent
	}
	if c.MaxConcurrentQueries <= 0 {
		c.MaxConcurrentQueries = min(d.MaxConcurrentQueries, c.MaxConcurrent)
	}
	if c.Rate == (Rate{}) {
		c.Rate = d.Rate
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = d.CacheTTL
	}
	if c.CacheMaxEntries <= 0 {
		c.CacheMaxEntries = d.CacheMaxEntries
	}
	if c.CacheMaxBytes <= 0 {
		c.CacheMaxBytes = d.CacheMaxBytes
	}
	if c.CacheMaxEntryBytes <= 0 {
		c.CacheMaxEntryBytes = d.CacheMaxEntryBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a configuration error, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, ok := c.Classes[c.DefaultClass]; !ok {
		return fmt.Errorf("ratelimit: defaultClass %q is not in classes %v", c.DefaultClass, c.ClassNames())
	}
	for _, name := range c.ClassNames() {
		if err := c.Classes[name].validate("classes." + name); err != nil {
			return err
		}
	}
	if err := c.Agent.validate("agent"); err != nil {
		return err
	}
	if err := c.Global.validate("global"); err != nil {
		return err
	}
	return c.Upstream.Validate()
}

// Validate reports a configuration error, after defaults are applied.
func (c UpstreamConfig) Validate() error {
	if c.MaxConcurrent < 0 || c.MaxConcurrentQueries < 0 {
		return errors.New("ratelimit: upstream.maxConcurrent and upstream.maxConcurrentQueries must be positive (or 0 for the default)")
	}
	c = c.withDefaults()
	if c.MaxConcurrentQueries > c.MaxConcurrent {
		return fmt.Errorf("ratelimit: upstream.maxConcurrentQueries (%d) must not exceed upstream.maxConcurrent (%d): every query also takes one of those", c.MaxConcurrentQueries, c.MaxConcurrent)
	}
	return c.Rate.validate("upstream.rate")
}

// ClassNames returns the configured rate classes, sorted.
func (c Config) ClassNames() []string {
	names := make([]string, 0, len(c.Classes))
	for n := range c.Classes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HasClass reports whether class is configured (after defaults), so that a
// policy naming an unknown class can be rejected when it is loaded.
func (c Config) HasClass(class string) bool {
	_, ok := c.withDefaults().Classes[class]
	return ok
}
