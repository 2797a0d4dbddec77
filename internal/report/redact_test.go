package report

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://:pw@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"rediss://default:pw@h:6380/1", "rediss://default:xxxxx@h:6380/1"},
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://user@h", "redis://user@h"},
		{"redis://h/0?password=pw&db=1", "redis://h/0?db=1&password=xxxxx"},
		{"redis://:p%zz@h", "redis://xxxxx"}, // does not parse: cut
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzRedactText checks that a password inside any Redis URL in a message never survives.
func FuzzRedactText(f *testing.F) {
	f.Add("default", "hunter2hunter2", "10.0.0.5:6379", "dial ", ": connection refused")
	f.Add("", "Zx9Zx9Zx9", "redis.internal", "read ", "")
	f.Fuzz(func(t *testing.T, user, pw, host, before, after string) {
		if len(pw) < 6 || strings.Trim(pw, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Skip()
		}
		if strings.Contains(user+host+before+after, pw) || strings.ContainsAny(before+after, ":/") {
			t.Skip()
		}
		u := url.URL{Scheme: "redis", User: url.UserPassword(user, pw), Host: host, Path: "/0"}
		in := before + u.String() + after
		u.User = url.UserPassword(user, "-")
		if strings.Contains(before+u.String()+after, pw) {
			t.Skip() // the rest of the text spells the password by itself
		}
		if out := redactText(in); strings.Contains(out, pw) {
			t.Fatalf("redactText(%q) = %q keeps the password", in, out)
		}
	})
}
