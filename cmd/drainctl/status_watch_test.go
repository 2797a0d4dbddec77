package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/testenv"
)

// TestStatusWatch: --watch shows the fleet again every interval (plain views one after the
// other when stdout is not a terminal) until Ctrl-C ends it, with exit 0; it is text only.
func TestStatusWatch(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	env := map[string]string{"REDIS_URL": r.URL()}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	code, out, errs := runCLICtx(ctx, t, env, "status", "--watch", "--interval", "200ms")
	if code != 0 {
		t.Fatalf("status --watch: exit %d, stderr %q", code, errs)
	}
	if n := strings.Count(out, "--- "); n < 3 {
		t.Errorf("%d views in 1.5 s at 200 ms, want at least 3:\n%s", n, out)
	}
	code, _, errs = runCLI(t, env, "status", "--watch", "-o", "json")
	if code != exitUsage || !strings.Contains(errs, "--watch shows text") {
		t.Errorf("status --watch -o json: exit %d, stderr %q; want 2 naming the fix", code, errs)
	}
}
