package drain

import (
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/drainctl/drainctl/internal/sidekiq"
)

// NewLockOwner describes the run that takes the deploy lock, for whoever finds it held: the CI
// job when there is one (a GitHub Actions run URL, or GitLab's $CI_JOB_URL), else $USER,
// else the current user's name, with this host and process. getenv reads the environment.
func NewLockOwner(getenv func(string) string, now time.Time) sidekiq.LockOwner {
	owner := getenv("USER")
	if srv, repo, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"); repo != "" && id != "" {
		owner = fmt.Sprintf("%s/%s/actions/runs/%s", srv, repo, id)
	} else if u := getenv("CI_JOB_URL"); u != "" {
		owner = u
	}
	if owner == "" {
		if u, err := user.Current(); err == nil {
			owner = u.Username
		} else {
			owner = fmt.Sprintf("uid %d", os.Getuid())
		}
	}
	host, _ := os.Hostname()
	return sidekiq.LockOwner{Owner: owner, Host: host, PID: os.Getpid(), StartedAt: now}
}
