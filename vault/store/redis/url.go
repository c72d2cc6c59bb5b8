package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Client defaults, chosen so that an outage fails calls fast (the API then
// answers 503 STORE_UNAVAILABLE) and the client reconnects by itself when
// Redis is back. URL parameters override them.
const (
	defaultDialTimeout  = time.Second
	defaultReadTimeout  = 3 * time.Second
	defaultWriteTimeout = 3 * time.Second
	defaultPoolTimeout  = 2 * time.Second
	defaultMaxRetries   = 1
	defaultDialRetries  = 1
	// defaultPipelinePool lets exec spread a large pipeline over enough
	// connections (see pipe).
	defaultPipelinePool = 4 * maxParallelChunks
)

// NewClient returns a go-redis client for url, with fieldvault's defaults,
// and moves the store parameters in url's query into opt (they override
// it). The forms are:
//
//	redis://[user:password@]host:port[/db][?params]
//	rediss://...                                           (TLS)
//	redis-cluster://[user:password@]host:port,host:port,...[?params]
//	rediss-cluster://...                                   (TLS)
//	redis-sentinel://[user:password@]master@host:port,host:port,...[/db][?params]
//	rediss-sentinel://...                                  (TLS)
//
// user and password authenticate to the data nodes; for Sentinel,
// sentinel_username and sentinel_password authenticate to the sentinels.
// Store parameters: prefix, bucket_bits, aof_check (warn, require, skip),
// wait_replicas, wait_timeout. Every other parameter is a go-redis option
// (dial_timeout, read_timeout, write_timeout, pool_size, max_retries,
// skip_verify, ...); unknown ones are an error.
func NewClient(rawURL string, opt *Options) (goredis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redis store: %q is not a redis URL", redactURL(rawURL))
	}
	tls := strings.HasPrefix(scheme, "rediss")
	base := "redis"
	if tls {
		base = "rediss"
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("redis store: URL query: %w", err)
	}
	if err := takeStoreParams(query, opt); err != nil {
		return nil, err
	}
	authority, path, _ := strings.Cut(rest, "/")
	if path != "" {
		path = "/" + path
	}

	switch strings.TrimPrefix(scheme, base) {
	case "":
		o, err := goredis.ParseURL(base + "://" + authority + path + encodeQuery(query))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		clientDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries,
			&o.DialerRetries, &o.PipelinePoolSize, &o.Protocol)
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(o), nil

	case "-cluster":
		if path != "" && path != "/" && path != "/0" {
			return nil, fmt.Errorf("redis store: a Cluster has only database 0, not %q", path)
		}
		user, hosts := splitUser(authority)
		addrs, err := splitHosts(hosts)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs[1:] {
			query.Add("addr", a)
		}
		o, err := goredis.ParseClusterURL(base + "://" + user + addrs[0] + encodeQuery(query))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		clientDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries,
			&o.DialerRetries, &o.PipelinePoolSize, &o.Protocol)
		o.ContextTimeoutEnabled = true
		return goredis.NewClusterClient(o), nil

	case "-sentinel":
		left, hosts := splitUser(authority)
		user, master := splitUser(strings.TrimSuffix(left, "@"))
		if master == "" {
			return nil, errors.New("redis store: a Sentinel URL names its master, as in redis-sentinel://master@host:port,host:port")
		}
		addrs, err := splitHosts(hosts)
		if err != nil {
			return nil, err
		}
		query.Set("master_name", master)
		for _, a := range addrs[1:] {
			query.Add("addr", a)
		}
		if user != "" {
			u, err := url.Parse("redis://" + user + "host")
			if err != nil {
				return nil, fmt.Errorf("redis store: URL credentials: %w", err)
			}
			query.Set("username", u.User.Username())
			if pw, ok := u.User.Password(); ok {
				query.Set("password", pw)
			}
		}
		var sentinelUser string
		if su, sp := query.Get("sentinel_username"), query.Get("sentinel_password"); su != "" || sp != "" {
			sentinelUser = url.UserPassword(su, sp).String() + "@"
			query.Del("sentinel_username")
			query.Del("sentinel_password")
		}
		o, err := goredis.ParseFailoverURL(base + "://" + sentinelUser + addrs[0] + path + encodeQuery(query))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		clientDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries,
			&o.DialerRetries, &o.PipelinePoolSize, &o.Protocol)
		o.ContextTimeoutEnabled = true
		return goredis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("redis store: unknown scheme %q (redis, rediss, redis-cluster, rediss-cluster, redis-sentinel, rediss-sentinel)", scheme)
}

// takeStoreParams moves the store's own parameters from q into opt.
func takeStoreParams(q url.Values, opt *Options) error {
	take := func(name string) (string, bool) {
		v, ok := q[name]
		if !ok {
			return "", false
		}
		q.Del(name)
		if len(v) == 0 {
			return "", true
		}
		return v[len(v)-1], true
	}
	if v, ok := take("prefix"); ok {
		if v == "" {
			return fmt.Errorf("redis store: empty prefix")
		}
		opt.Prefix = v
	}
	if v, ok := take("bucket_bits"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBucketBits {
			return fmt.Errorf("redis store: bucket_bits %q: want 1..%d", v, maxBucketBits)
		}
		opt.BucketBits = n
	}
	if v, ok := take("aof_check"); ok {
		switch v {
		case "warn":
			opt.AOFCheck = AOFWarn
		case "require":
			opt.AOFCheck = AOFRequire
		case "skip":
			opt.AOFCheck = AOFSkip
		default:
			return fmt.Errorf("redis store: aof_check %q: want warn, require or skip", v)
		}
	}
	if v, ok := take("wait_replicas"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("redis store: wait_replicas %q", v)
		}
		opt.WaitReplicas = n
	}
	if v, ok := take("wait_timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("redis store: wait_timeout %q", v)
		}
		opt.WaitTimeout = d
	}
	return nil
}

func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// splitUser splits authority at its last '@' into the userinfo (with its
// '@', or "" when there is none) and the rest. Percent-encoding keeps '@'
// out of userinfo.
func splitUser(authority string) (user, rest string) {
	i := strings.LastIndex(authority, "@")
	if i < 0 {
		return "", authority
	}
	return authority[:i+1], authority[i+1:]
}

func splitHosts(hosts string) ([]string, error) {
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("redis store: %q is not host:port", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

func clientDefaults(dial, read, write, pool *time.Duration, retries, dialRetries, pipelinePool, protocol *int) {
	if *protocol == 0 {
		// RESP2: with RESP3, go-redis checks for push notifications
		// before every reply it reads, which the store never uses.
		*protocol = 2
	}
	if *dial == 0 {
		*dial = defaultDialTimeout
	}
	if *read == 0 {
		*read = defaultReadTimeout
	}
	if *write == 0 {
		*write = defaultWriteTimeout
	}
	if *pool == 0 {
		*pool = defaultPoolTimeout
	}
	if *retries == 0 {
		*retries = defaultMaxRetries
	}
	if *dialRetries == 0 {
		*dialRetries = defaultDialRetries
	}
	if *pipelinePool == 0 {
		*pipelinePool = defaultPipelinePool
	}
}

// redactURL hides the password of a URL for error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}
