package redis

import (
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func TestNewClientStandalone(t *testing.T) {
	var opt Options
	c, err := NewClient("redis://app:s%40cret@10.0.0.5:6380/3?prefix=tenant1:&bucket_bits=18&aof_check=require&read_timeout=5s", &opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, ok := c.(*goredis.Client)
	if !ok {
		t.Fatalf("client is %T, want *redis.Client", c)
	}
	o := cl.Options()
	if o.Addr != "10.0.0.5:6380" || o.DB != 3 || o.Username != "app" || o.Password != "s@cret" || o.TLSConfig != nil {
		t.Errorf("options: addr %q db %d user %q password %q tls %v", o.Addr, o.DB, o.Username, o.Password, o.TLSConfig != nil)
	}
	if o.ReadTimeout != 5*time.Second || o.DialTimeout != defaultDialTimeout || o.WriteTimeout != defaultWriteTimeout ||
		o.MaxRetries != defaultMaxRetries || !o.ContextTimeoutEnabled {
		t.Errorf("timeouts: dial %v read %v write %v retries %d ctx %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout,
			o.MaxRetries, o.ContextTimeoutEnabled)
	}
	if opt.Prefix != "tenant1:" || opt.BucketBits != 18 || opt.AOFCheck != AOFRequire {
		t.Errorf("store options %+v", opt)
	}
}

func TestNewClientTLS(t *testing.T) {
	var opt Options
	c, err := NewClient("rediss://redis.example:6379", &opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.(*goredis.Client).Options()
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" {
		t.Errorf("TLS config %+v", o.TLSConfig)
	}
}

func TestNewClientCluster(t *testing.T) {
	var opt Options
	c, err := NewClient("rediss-cluster://u:p@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002?wait_replicas=1&wait_timeout=250ms", &opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc, ok := c.(*goredis.ClusterClient)
	if !ok {
		t.Fatalf("client is %T, want *redis.ClusterClient", c)
	}
	o := cc.Options()
	if strings.Join(o.Addrs, ",") != "10.0.0.1:7000,10.0.0.2:7001,[::1]:7002" || o.Username != "u" || o.Password != "p" || o.TLSConfig == nil {
		t.Errorf("cluster options: addrs %q user %q password %q tls %v", o.Addrs, o.Username, o.Password, o.TLSConfig != nil)
	}
	if opt.WaitReplicas != 1 || opt.WaitTimeout != 250*time.Millisecond {
		t.Errorf("store options %+v", opt)
	}
}

func TestNewClientSentinel(t *testing.T) {
	for _, tc := range []struct {
		url      string
		user, pw string
		db       int
	}{
		{"redis-sentinel://mymaster@10.0.0.1:26379,10.0.0.2:26379/2", "", "", 2},
		{"redis-sentinel://app:pw@mymaster@10.0.0.1:26379,10.0.0.2:26379?sentinel_password=sp", "app", "pw", 0},
	} {
		var opt Options
		c, err := NewClient(tc.url, &opt)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		cl, ok := c.(*goredis.Client)
		if !ok {
			t.Fatalf("client is %T, want a failover *redis.Client", c)
		}
		o := cl.Options()
		if o.Username != tc.user || o.Password != tc.pw || o.DB != tc.db {
			t.Errorf("%s: user %q password %q db %d", tc.url, o.Username, o.Password, o.DB)
		}
		_ = c.Close()
	}
}

func TestNewClientErrors(t *testing.T) {
	for _, u := range []string{
		"localhost:6379",
		"http://localhost:6379",
		"redis://localhost:6379?bucket_bits=30",
		"redis://localhost:6379?aof_check=maybe",
		"redis://localhost:6379?prefix=",
		"redis://localhost:6379?no_such_option=1",
		"redis-cluster://10.0.0.1:7000,nonsense",
		"redis-cluster://10.0.0.1:7000/4",
		"redis-sentinel://10.0.0.1:26379",
		"redis://localhost:6379?wait_timeout=-1s",
	} {
		var opt Options
		c, err := NewClient(u, &opt)
		if err == nil {
			_ = c.Close()
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := redactURL("redis://u:secret@h:1/0"); strings.Contains(got, "secret") {
		t.Errorf("redactURL kept the password: %q", got)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	ks := newKeyspace("fv:", 16)
	for _, c := range []struct {
		bucket uint32
		last   string
	}{{0, ""}, {65535, "tok\x00\xff"}, {7, "a"}} {
		cur := encodeCursor(tokenCursorTag, c.bucket, c.last)
		for i := 0; i < len(cur); i++ {
			if cur[i] < 0x20 || cur[i] > 0x7e {
				t.Fatalf("cursor %q is not printable", cur)
			}
		}
		b, l, ok := ks.decodeCursor(tokenCursorTag, cur)
		if !ok || b != c.bucket || l != c.last {
			t.Errorf("decode(encode(%d, %q)) = %d, %q, %v", c.bucket, c.last, b, l, ok)
		}
	}
	for _, bad := range []string{"t1.10000.", "k1.0.", "t1.0.zz", "t1..", "t1.0", "x"} {
		if _, _, ok := ks.decodeCursor(tokenCursorTag, bad); ok {
			t.Errorf("decodeCursor accepted %q", bad)
		}
	}
}

// The bucket hash is part of the stored layout: these values must never
// change.
func TestHashStable(t *testing.T) {
	for _, c := range []struct {
		domain byte
		s      string
		want   uint64
	}{
		{domainToken, "", 0xce03a4a8854cb33b},
		{domainToken, "tok_ph_abc", 0x4bf0225019f08952},
		{domainSubject, "u1", 0xcb507535aa921e61},
	} {
		if got := hash64(c.domain, c.s); got != c.want {
			t.Errorf("hash64(%q, %q) = %#x, want %#x", c.domain, c.s, got, c.want)
		}
	}
}
