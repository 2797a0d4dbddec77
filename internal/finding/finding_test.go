package finding

import (
	"reflect"
	"testing"
)

func TestSummaryBlocking(t *testing.T) {
	tests := []struct {
		name   string
		fs     []Finding
		strict bool
		want   bool
	}{
		{"none", nil, true, false},
		{"info only, strict", []Finding{{Severity: Info}}, true, false},
		{"warning", []Finding{{Severity: Warning}}, false, false},
		{"warning, strict", []Finding{{Severity: Warning}}, true, true},
		{"error", []Finding{{Severity: Error}, {Severity: Info}}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.fs).Blocking(tc.strict); got != tc.want {
				t.Errorf("Blocking(%v) = %v, want %v", tc.strict, got, tc.want)
			}
		})
	}
}

func TestSort(t *testing.T) {
	fs := []Finding{
		{Code: "SP003", Severity: Warning, Subject: "a"},
		{Code: "PF002", Severity: Info, Subject: "a"},
		{Code: "SP001", Severity: Error, Subject: "b"},
		{Code: "SP001", Severity: Error, Subject: "a"},
	}
	Sort(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.Code+"/"+f.Subject)
	}
	want := []string{"SP001/a", "SP001/b", "SP003/a", "PF002/a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sort = %v, want %v", got, want)
	}
}
