package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"wait", "wait", 0}, {"wiat", "wait", 2}, {"drain-timeot", "drain-timeout", 1},
		{"kitten", "sitting", 3}} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	flags := []string{"drain-timeout", "dry-run", "wait", "o", "output"}
	for _, tt := range []struct{ name, want string }{
		{"drain-timeot", "drain-timeout"},
		{"dryrun", "dry-run"},
		{"wiat", ""}, // two of four letters: too far to be a typo
		{"waits", "wait"},
		{"outptu", "output"},
		{"zzz", ""},
		{"", ""},
	} {
		if got := Closest(tt.name, flags); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
