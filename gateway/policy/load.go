package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Query is the decision the gateway asks for.
const Query = "data.dgw.decision"

// Rules of package dgw that gateway/policy reads besides the decision; they
// are part of the contract between the Rego and the Go side.
const (
	queryClasses   = "data.dgw.recipient_classes" // set of recipient types
	querySensitive = "data.dgw.sensitive_fields"  // event type → set of leaf paths
)

// testTimeout bounds one Rego test.
const testTimeout = 30 * time.Second

// source is a policy directory read into memory, laid out as `opa test DIR`
// sees it: data files are loaded under their directory path, so
// data/recipients.json is data.data.recipients.
type source struct {
	files    map[string][]byte      // every file the loader reads, by path
	modules  map[string]*ast.Module // every module, tests included, by path
	policy   map[string]*ast.Module // modules without the *_test.rego files
	docs     map[string]any         // the data documents
	revision string
}

// loadable reports whether the OPA loader reads a file.
func loadable(name string) bool {
	switch path.Ext(name) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// readLoadable calls add with the path and content of every file of fsys
// the policy loader reads.
func readLoadable(fsys fs.FS, add func(path string, data []byte)) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !loadable(p) {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		add(p, b)
		return nil
	})
}

// read loads fsys. It returns the problems that make the directory unusable.
func read(fsys fs.FS) (*source, []Problem) {
	src := &source{files: map[string][]byte{}, modules: map[string]*ast.Module{}, policy: map[string]*ast.Module{}}
	err := readLoadable(fsys, func(p string, b []byte) { src.files[p] = b })
	if err != nil {
		return nil, []Problem{{File: ".", Msg: "read policy directory: " + err.Error()}}
	}
	src.revision = revision(src.files)
	res, err := loader.NewFileLoader().
		WithFS(fsys).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		All([]string{"."})
	if err != nil {
		return nil, loadProblems(err, src.files)
	}
	for _, f := range res.Modules {
		src.modules[f.Name] = f.Parsed
		if !isTestFile(f.Name) {
			src.policy[f.Name] = f.Parsed
		}
	}
	if len(src.policy) == 0 {
		return nil, []Problem{{File: ".", Msg: "no Rego modules (*.rego other than *_test.rego)"}}
	}
	src.docs = res.Documents
	return src, nil
}

// revision is a short hex hash of every module and data file, stable for
// the same bytes.
func revision(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// loadProblems turns loader errors into problems with file and line.
func loadProblems(err error, files map[string][]byte) []Problem {
	var errs loader.Errors
	if errors.As(err, &errs) {
		var out []Problem
		for _, e := range errs {
			out = append(out, problemsOf(e, files)...)
		}
		return out
	}
	return problemsOf(err, files)
}

func problemsOf(err error, files map[string][]byte) []Problem {
	var aes ast.Errors
	if errors.As(err, &aes) {
		return astProblems(aes)
	}
	var ae *ast.Error
	if errors.As(err, &ae) {
		return astProblems(ast.Errors{ae})
	}
	msg := err.Error()
	for name, b := range files {
		rest, ok := strings.CutPrefix(msg, name+": ")
		if !ok {
			continue
		}
		line := 0
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line = lineAt(b, int(se.Offset))
		}
		return []Problem{{File: name, Line: line, Msg: rest}}
	}
	return []Problem{{File: ".", Msg: msg}}
}

func astProblems(errs ast.Errors) []Problem {
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		p := Problem{File: ".", Msg: e.Code + ": " + e.Message}
		if e.Location != nil {
			p.File, p.Line = e.Location.File, e.Location.Row
		}
		out = append(out, p)
	}
	return out
}

// lineAt is the 1-based line of byte offset off.
func lineAt(b []byte, off int) int {
	off = min(max(off, 0), len(b))
	return bytes.Count(b[:off], []byte("\n")) + 1
}

// compile compiles modules in strict mode, as `opa check --strict` does.
func compile(modules map[string]*ast.Module, prints bool) (*ast.Compiler, []Problem) {
	c := ast.NewCompiler().
		WithStrict(true).
		WithCapabilities(ast.CapabilitiesForThisVersion()).
		WithEnablePrintStatements(prints)
	c.Compile(modules)
	if c.Failed() {
		return nil, astProblems(c.Errors)
	}
	return c, nil
}

// store holds the data documents for evaluation.
func (s *source) store() storage.Store {
	return inmem.NewFromObjectWithOpts(s.docs, inmem.OptReturnASTValuesOnRead(true))
}

// runTests runs every Rego test of s, with coverage when cov is set.
func (s *source) runTests(ctx context.Context, cov *cover.Cover) ([]*tester.Result, error) {
	r := tester.NewRunner().
		SetStore(s.store()).
		SetModules(s.modules).
		CapturePrintOutput(true).
		SetTimeout(testTimeout).
		SetParallel(runtime.GOMAXPROCS(0))
	if cov != nil {
		r = r.SetCoverageQueryTracer(cov).SetCoverageRuns(nil)
	}
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		var aes ast.Errors
		if errors.As(err, &aes) {
			return nil, &ProblemsError{Problems: astProblems(aes)}
		}
		return nil, fmt.Errorf("run rego tests: %w", err)
	}
	var out []*tester.Result
	for res := range ch {
		out = append(out, res)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run rego tests: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Location, out[j].Location
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	return out, nil
}

// testProblems lists failing tests.
func testProblems(results []*tester.Result) []Problem {
	var out []Problem
	for _, r := range results {
		if r.Pass() || r.Skip {
			continue
		}
		p := Problem{File: r.Location.File, Line: r.Location.Row, Msg: "rego test " + r.Package + "." + r.Name + " failed"}
		if r.Error != nil {
			p.Msg += ": " + r.Error.Error()
		}
		out = append(out, p)
	}
	if len(results) == 0 {
		out = append(out, Problem{File: ".", Msg: "the policy has no Rego tests (test_* rules in *_test.rego)"})
	}
	return out
}

// evalData evaluates a query without input, for rules the Go side reads.
func evalData(ctx context.Context, c *ast.Compiler, st storage.Store, query string) (any, bool, error) {
	rs, err := rego.New(rego.Query(query), rego.Compiler(c), rego.Store(st)).Eval(ctx)
	if err != nil {
		return nil, false, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, false, nil
	}
	return rs[0].Expressions[0].Value, true, nil
}

// ruleLocation is where a rule of package dgw is defined, for problems.
func ruleLocation(c *ast.Compiler, query string) (string, int) {
	ref, err := ast.ParseRef(query)
	if err != nil {
		return ".", 0
	}
	rules := c.GetRulesExact(ref)
	if len(rules) == 0 || rules[0].Location == nil {
		return ".", 0
	}
	return rules[0].Location.File, rules[0].Location.Row
}

// stringSet reads a Rego set or array of strings.
func stringSet(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, x := range items {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
