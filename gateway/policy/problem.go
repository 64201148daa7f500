package policy

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one problem of a policy directory, at a file and line (line 0
// when the problem concerns a whole file). Messages name paths, ids and
// rules, never field values.
type Problem struct {
	File string
	Line int
	Msg  string
}

// String formats the problem as "file:line: msg", or "file: msg" without a line.
func (p Problem) String() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Msg
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Msg
}

// ProblemsError is the error New returns when the policy directory has
// problems; it lists all of them.
type ProblemsError struct {
	Problems []Problem
	// Revision is the revision of the rejected directory, when it could be
	// read.
	Revision string
}

func (e *ProblemsError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strconv.Itoa(len(e.Problems)) + " policy problems: " + strings.Join(s, "; ")
}

// sortProblems orders problems by file and line and removes duplicates.
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Msg < ps[j].Msg
	})
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && p == out[len(out)-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}
