package exitcode

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEMatchesTable fails when README.md's exit-code table and the code's drift apart.
func TestREADMEMatchesTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), Markdown()) {
		t.Errorf("README.md's exit-code table differs from internal/exitcode; it should read:\n%s", Markdown())
	}
}

func TestMeaning(t *testing.T) {
	seen := map[Code]bool{}
	for _, e := range Table {
		if seen[e.Code] {
			t.Errorf("code %d listed twice", e.Code)
		}
		seen[e.Code] = true
		if Meaning(e.Code) != e.Meaning || e.Meaning == "" {
			t.Errorf("Meaning(%d) = %q", e.Code, Meaning(e.Code))
		}
	}
	if Meaning(42) != "" {
		t.Errorf("Meaning(42) = %q, want empty", Meaning(42))
	}
	if h := Help(); !strings.HasPrefix(h, "EXIT CODES:\n") || strings.Count(h, "\n") != len(Table) {
		t.Errorf("Help() = %q", h)
	}
}
