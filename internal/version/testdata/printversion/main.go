// Command printversion prints version.Get() as JSON: the stamping test builds it with the
// release build's -ldflags.
package main

import (
	"encoding/json"
	"os"

	"github.com/drainctl/drainctl/internal/version"
)

func main() {
	_ = json.NewEncoder(os.Stdout).Encode(version.Get())
}
