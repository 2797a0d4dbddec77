package sidekiq

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redactedPassword stands in for a password in anything printed.
const redactedPassword = "xxxxx"

// DefaultTimeout bounds connecting to Redis and each command when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options says how to reach the Redis a Sidekiq fleet uses. Build it with ParseURL or by hand.
type Options struct {
	// Addrs are host:port pairs: the one server, or the Sentinels when MasterName is set.
	Addrs []string
	// Username and Password authenticate to Redis (ACL user, or requirepass with no user).
	Username string
	Password string
	// DB is the database number; zero is Redis's default.
	DB int
	// TLS connects with TLS (rediss://), verifying the server's certificate.
	TLS bool
	// TLSConfig, when set, is the base TLS configuration for TLS connections (e.g. RootCAs for
	// a private CA); nil means the system's roots. ParseURL leaves it nil.
	TLSConfig *tls.Config `json:"-"`
	// MasterName is the Sentinel master's name; empty means no Sentinel.
	MasterName string
	// SentinelPassword authenticates to the Sentinels themselves; empty means none.
	SentinelPassword string
	// Namespace is the redis-namespace key prefix without its colon; empty means none.
	Namespace string
	// Timeout bounds connecting and each command (dial, read and write). Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// ForceLayout is the layout assumed for processes of an unknown Sidekiq major (9+);
	// LayoutUnknown (zero) means refuse to write for them. See Client.ForceLayout.
	ForceLayout Layout `json:"-"`
}

// URLError is a Redis URL that could not be parsed. Part names the wrong part (scheme, user,
// password, host, port, database, master, query); the message never contains a password.
type URLError struct {
	Part string
	Msg  string
}

// Error returns the message, which names the part of the URL that is wrong.
func (e *URLError) Error() string { return "parse redis URL: " + e.Part + ": " + e.Msg }

func urlErr(part, format string, args ...any) error {
	return &URLError{Part: part, Msg: fmt.Sprintf(format, args...)}
}

// ParseURL reads a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db][?namespace=ns]
//	rediss://…                                   (TLS)
//	redis+sentinel://[[user]:password@]host1[:26379],host2[:26379]/master[/db][?namespace=ns&sentinel_password=pw]
//	rediss+sentinel://…                          (TLS to the Sentinels and the master)
//
// With Sentinel, the user and password in the URL are the master's; the Sentinels' own password,
// if any, is the sentinel_password parameter. A missing host is localhost; a missing port is
// 6379 (26379 for a Sentinel). Surrounding whitespace (a pasted URL, a trailing newline in an
// environment file) is trimmed. Errors name the wrong part and never contain the password.
func ParseURL(raw string) (*Options, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, urlErr("scheme", "the URL is empty")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, urlErr("scheme", "missing \"://\" (want redis://, rediss://, redis+sentinel:// or rediss+sentinel://)")
	}
	o := &Options{}
	sentinel := false
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		o.TLS = true
	case "redis+sentinel":
		sentinel = true
	case "rediss+sentinel":
		sentinel, o.TLS = true, true
	default:
		// Only a well-known scheme is quoted back: the text before "://" could be anything.
		switch strings.ToLower(scheme) {
		case "http", "https", "tcp", "unix", "valkey", "valkeys", "redis-sentinel", "sentinel":
			return nil, urlErr("scheme", "%q is not one of redis, rediss, redis+sentinel, rediss+sentinel", strings.ToLower(scheme))
		}
		return nil, urlErr("scheme", "not one of redis, rediss, redis+sentinel, rediss+sentinel")
	}
	// The userinfo ends at the last '@' (a password may hold '/', '?', '#' or '@'); so an '@'
	// anywhere after it, in the path or the query, must be written %40.
	var userinfo string
	hasUser := false
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo, rest, hasUser = rest[:at], rest[at+1:], true
	}
	rest, fragment, _ := strings.Cut(rest, "#")
	if fragment != "" {
		return nil, urlErr("fragment", "a Redis URL has no #fragment")
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hosts, path = rest[:i], rest[i:]
	}
	if hasUser {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		u, err := url.PathUnescape(user)
		if err != nil {
			return nil, urlErr("user", "invalid %%-escape in the user name")
		}
		o.Username = u
		if hasPass {
			p, err := url.PathUnescape(pass)
			if err != nil {
				return nil, urlErr("password", "invalid %%-escape in the password")
			}
			o.Password = p
		} else if o.Username != "" {
			// redis://secret@host: a lone userinfo is the password, as redis-client (Sidekiq 7) reads it.
			o.Password, o.Username = o.Username, ""
		}
	}
	defPort := "6379"
	if sentinel {
		defPort = "26379"
	}
	hostList := strings.Split(hosts, ",")
	if !sentinel && len(hostList) > 1 {
		return nil, urlErr("host", "several hosts are only allowed with redis+sentinel://")
	}
	for _, h := range hostList {
		addr, err := hostPort(h, defPort)
		if err != nil {
			return nil, err
		}
		o.Addrs = append(o.Addrs, addr)
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if path == "" || path == "/" {
		segs = nil
	}
	if sentinel {
		if len(segs) == 0 || segs[0] == "" {
			return nil, urlErr("master", "redis+sentinel:// needs the master name as the first path segment (…/mymaster/0)")
		}
		m, err := url.PathUnescape(segs[0])
		if err != nil {
			return nil, urlErr("master", "invalid %%-escape in the master name")
		}
		o.MasterName = m
		segs = segs[1:]
	}
	switch {
	case len(segs) > 1:
		return nil, urlErr("database", "too many path segments (want /db)")
	case len(segs) == 1 && segs[0] != "":
		n, err := strconv.Atoi(segs[0])
		if err != nil || n < 0 {
			return nil, urlErr("database", "%q is not a non-negative number", safeShort(segs[0]))
		}
		o.DB = n
	}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			val, err := url.QueryUnescape(v)
			if err != nil {
				return nil, urlErr("query", "invalid %%-escape in parameter %q", safeShort(k))
			}
			switch k {
			case "namespace":
				o.Namespace = strings.TrimSuffix(val, ":")
			case "sentinel_password":
				if !sentinel {
					return nil, urlErr("query", "sentinel_password needs redis+sentinel://")
				}
				o.SentinelPassword = val
			default:
				return nil, urlErr("query", "unknown parameter %q (known: namespace, sentinel_password)", safeShort(k))
			}
		}
	}
	return o, nil
}

// hostPort validates one host[:port] and fills in the default port.
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return net.JoinHostPort("localhost", defPort), nil
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") { // [::1]:6379
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", urlErr("host", "%q has an unclosed [", safeShort(h))
		}
		host = h[1:end]
		if tail := h[end+1:]; tail != "" {
			if !strings.HasPrefix(tail, ":") {
				return "", urlErr("host", "unexpected %q after ]", safeShort(tail))
			}
			port = tail[1:]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
	}
	if host == "" {
		host = "localhost"
	}
	if strings.HasPrefix(h, "[") {
		if net.ParseIP(host) == nil {
			return "", urlErr("host", "%q is not an IPv6 address", safeShort(host))
		}
	} else if strings.ContainsAny(host, " /?#@[]:%\t\n") {
		return "", urlErr("host", "%q is not a host name or address", safeShort(host))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", urlErr("port", "%q is not a port number (1-65535)", safeShort(port))
	}
	return net.JoinHostPort(host, port), nil
}

// safeShort bounds a URL fragment quoted in an error message.
func safeShort(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Redacted is the URL form of o with the passwords replaced by "xxxxx", for printing.
func (o *Options) Redacted() string {
	if o == nil {
		return ""
	}
	var b strings.Builder
	switch {
	case o.TLS && o.MasterName != "":
		b.WriteString("rediss+sentinel://")
	case o.MasterName != "":
		b.WriteString("redis+sentinel://")
	case o.TLS:
		b.WriteString("rediss://")
	default:
		b.WriteString("redis://")
	}
	if o.Username != "" || o.Password != "" {
		b.WriteString(url.PathEscape(o.Username))
		if o.Password != "" {
			b.WriteString(":" + redactedPassword)
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(o.Addrs, ","))
	if o.MasterName != "" {
		b.WriteString("/" + url.PathEscape(o.MasterName))
	}
	b.WriteString("/" + strconv.Itoa(o.DB))
	var q []string
	if o.Namespace != "" {
		q = append(q, "namespace="+url.QueryEscape(o.Namespace))
	}
	if o.SentinelPassword != "" {
		q = append(q, "sentinel_password="+redactedPassword)
	}
	if len(q) > 0 {
		b.WriteString("?" + strings.Join(q, "&"))
	}
	return b.String()
}

// Open connects a Client (lazily: the first command dials) with go-redis's universal client: a
// plain client, or a Sentinel failover client when MasterName is set.
func Open(o *Options) (*Client, error) {
	if o == nil || len(o.Addrs) == 0 {
		return nil, errors.New("open redis: no address")
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	uo := &redis.UniversalOptions{
		DialTimeout:      timeout,
		ReadTimeout:      timeout,
		WriteTimeout:     timeout,
		Addrs:            o.Addrs,
		Username:         o.Username,
		Password:         o.Password,
		DB:               o.DB,
		MasterName:       o.MasterName,
		SentinelPassword: o.SentinelPassword,
	}
	if o.MasterName == "" && len(o.Addrs) > 1 {
		return nil, fmt.Errorf("open redis %s: several addresses need a Sentinel master name", o.Redacted())
	}
	if o.TLS {
		host, _, err := net.SplitHostPort(o.Addrs[0])
		if err != nil {
			return nil, fmt.Errorf("open redis %s: %w", o.Redacted(), err)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if o.MasterName == "" && cfg.ServerName == "" {
			cfg.ServerName = host
		}
		uo.TLSConfig = cfg
	}
	c := NewClient(redis.NewUniversalClient(uo), o.Namespace)
	c.redacted = o.Redacted()
	c.forced = o.ForceLayout
	c.tried = o.tried(timeout)
	c.password = o.Password
	return c, nil
}

// tried describes how o connects, for connection errors: addresses, TLS or not, Sentinel or
// not, and the timeout. It holds no password.
func (o *Options) tried(timeout time.Duration) string {
	var b strings.Builder
	if o.MasterName != "" {
		fmt.Fprintf(&b, "Sentinel master %q via %s", o.MasterName, strings.Join(o.Addrs, ", "))
	} else {
		b.WriteString(strings.Join(o.Addrs, ", "))
	}
	if o.TLS {
		b.WriteString(" with TLS")
	} else {
		b.WriteString(" without TLS")
	}
	if o.MasterName == "" {
		b.WriteString(", no Sentinel")
	}
	fmt.Fprintf(&b, ", timeout %s", timeout)
	return b.String()
}

// ConnError is a failure to reach Redis (dial, TLS handshake, Sentinel, timeout) rather than
// an error reply. Tried says what was attempted — addresses, TLS or not, Sentinel or not, the
// timeout — without the password.
type ConnError struct {
	Tried string
	Err   error
}

// Error says what was tried and what failed.
func (e *ConnError) Error() string {
	return "cannot reach redis (tried " + e.Tried + "): " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ConnError) Unwrap() error { return e.Err }

// connErr wraps a transport error in a *ConnError; reply errors and nil pass through. Any
// password that leaked into the message is redacted.
func (c *Client) connErr(err error) error {
	if err == nil || isReplyError(err) {
		return err
	}
	tried := c.tried
	if tried == "" {
		tried = c.Redacted()
	}
	if c.password != "" && strings.Contains(err.Error(), c.password) {
		err = errors.New(strings.ReplaceAll(err.Error(), c.password, redactedPassword))
	}
	return &ConnError{Tried: tried, Err: err}
}

// Redacted is the connection URL without its password, for messages; "redis" when the Client
// was made by NewClient.
func (c *Client) Redacted() string {
	if c.redacted == "" {
		return "redis"
	}
	return c.redacted
}

// Ping checks that Redis is reachable and writable by setting a drainctl key (under the
// namespace) that expires after 10 seconds; a read-only replica fails here.
func (c *Client) Ping(ctx context.Context) error {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	key := c.key("drainctl:ping:" + hex.EncodeToString(b))
	if err := c.rdb.Set(ctx, key, time.Now().UTC().Format(time.RFC3339), 10*time.Second).Err(); err != nil {
		return fmt.Errorf("write %s on %s: %w", key, c.Redacted(), c.connErr(err))
	}
	return nil
}
