package drain

import (
	"os/user"
	"testing"
	"time"
)

// TestNewLockOwner: the lock names the CI job when there is one, else the user, even without $USER.
func TestNewLockOwner(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current user to compare with: %v", err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"github actions", map[string]string{"USER": "runner", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "42"}, "https://github.com/acme/shop/actions/runs/42"},
		{"gitlab", map[string]string{"USER": "runner", "CI_JOB_URL": "https://gitlab.example/acme/shop/-/jobs/7"}, "https://gitlab.example/acme/shop/-/jobs/7"},
		{"user", map[string]string{"USER": "alice"}, "alice"},
		{"no USER", map[string]string{}, me.Username},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLockOwner(func(k string) string { return tt.env[k] }, time.Unix(0, 0))
			if got.Owner != tt.want || got.PID == 0 || got.Host == "" {
				t.Errorf("NewLockOwner = %+v, want owner %q with host and pid", got, tt.want)
			}
		})
	}
}
