// Package suggest finds the name a user probably meant ("did you mean --drain-timeout?") by
// edit distance, for error messages that name the fix.
package suggest

// Closest is the name in names nearest to name by edit distance, when it is near enough to
// be a typo: fewer than a third of name's letters, plus one, differ. "" when none is. The
// first of equally near names wins.
func Closest(name string, names []string) string {
	best, bestD := "", len(name)/3+1
	for _, n := range names {
		if d := Distance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, byte by byte: the fewest insertions,
// deletions and substitutions that turn a into b.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
