package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// TouchSources stats every Go, Ruby and shell file of the repository (and go.mod, go.sum), so
// that `go test`'s result cache, which notes the files a test opens or stats, is invalidated
// by a change to any of them: tests that build the drainctl binary with `go build` would
// otherwise be cached across changes to the packages the binary is built from. Call it from
// a test (inside m.Run, where the files a test consults are recorded), not from TestMain.
func TouchSources() { touchOnce.Do(touchSources) }

var touchOnce sync.Once

func touchSources() {
	root := RepoRoot()
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".rb") || strings.HasSuffix(path, ".sh") || path == filepath.Join(root, "go.mod") || path == filepath.Join(root, "go.sum") {
			_, _ = os.Stat(path)
		}
		return nil
	})
}
