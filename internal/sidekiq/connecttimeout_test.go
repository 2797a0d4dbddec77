package sidekiq

import (
	"testing"
	"time"
)

// TestConnectTimeout: the first contact gets three command timeouts; zero means the default.
func TestConnectTimeout(t *testing.T) {
	for _, tt := range []struct {
		timeout, want time.Duration
	}{{0, 3 * DefaultTimeout}, {2 * time.Second, 6 * time.Second}} {
		if got := (&Options{Timeout: tt.timeout}).ConnectTimeout(); got != tt.want {
			t.Errorf("ConnectTimeout with Timeout %v = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}
