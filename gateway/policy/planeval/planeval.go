// Package planeval evaluates a Rego policy compiled to OPA's intermediate
// representation (the "plan" target of `opa build`, package
// github.com/open-policy-agent/opa/v1/ir) directly on OPA's values, with
// OPA's own built-in functions.
//
// OPA's interpreter (topdown) unifies terms and keeps bindings for every
// expression; the plan has already resolved every variable to a numbered
// local and every rule to a function, so evaluating it is a walk over
// statements. The policy package uses it to decide cache misses and keeps
// topdown as the reference: a plan is used only once it has decided a
// sample of inputs as topdown does, and anything this package does not
// support is an error (ErrUnsupported) that sends the decision back to
// topdown.
//
// The semantics follow OPA's Wasm compiler, the plan's one reference
// implementation: a statement that is undefined leaves its innermost
// block; a BreakStmt leaves Index+1 blocks; a function with two parameters
// (input and data) is memoised per evaluation. Where that would decide
// otherwise than OPA's interpreter, planeval follows the interpreter (each
// case has a test, and OPA's conformance cases are run against both):
//   - a CallDynamicStmt whose path names no planned function but a subtree
//     of planned functions (rules whose heads are deeper than the dispatch,
//     which OPA's planner leaves to the data document) evaluates that
//     subtree;
//   - the success flag of a negation planned from `not { ... }` is reset
//     before the negation (notFlag);
//   - a `with` of an undefined value (the planner restoring an undefined
//     input) makes the local undefined;
//   - a relation built-in (walk) gives the array of its values;
//   - a number key looked up where only its text is a key (data["2"] as
//     data[2], which the interpreter finds in the data documents) is an
//     error, left to the interpreter.
package planeval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// ErrUnsupported marks a plan, or a part of one met during an evaluation,
// that this package does not evaluate.
var ErrUnsupported = errors.New("unsupported by the plan evaluator")

// ConflictError is a rule that produced two values (an object key, a
// complete rule), as topdown's eval_conflict_error.
type ConflictError struct {
	Func     string
	Location string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eval_conflict_error: %s: conflicting values at %s", e.Func, e.Location)
}

// Program is a compiled plan, safe for concurrent evaluations.
type Program struct {
	funcs   []*function
	entry   *function
	byPath  map[string]int    // path joined by NUL → function
	subtree map[string][]leaf // path of no function → the functions under it
	stack   int               // locals of the deepest possible call chain
	pool    sync.Pool         // *state
}

type leaf struct {
	fn  int
	rel []*ast.Term // the path below the subtree's root
}

type function struct {
	name    string
	path    []string
	params  []int32
	ret     int32
	blocks  []*block
	nlocals int
	memo    bool // two parameters, input and data: one value per evaluation
	reached bool // compiled: the entry may call it
}

type block struct{ instrs []instr }

// operand is a local (konst nil) or a constant.
type operand struct {
	local int32
	konst *ast.Term
}

type opcode uint8

const (
	opResultSetAdd opcode = iota
	opReturn
	opBlock
	opBreak
	opCall
	opCallBuiltin
	opCallDynamic
	opWith
	opAssignVar
	opAssignVarOnce
	opAssignInt
	opScan
	opNop
	opNot
	opDot
	opLen
	opEqual
	opNotEqual
	opMakeNull
	opMakeNumber
	opMakeArray
	opMakeObject
	opMakeSet
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opResetLocal
	opArrayAppend
	opObjectInsert
	opObjectInsertOnce
	opObjectMerge
	opSetAdd
)

type instr struct {
	op      opcode
	a, b, c operand // sources: a (and b, c where the statement has them)
	target  int32
	index   int       // BreakStmt
	konst   *ast.Term // MakeNumber*, AssignInt
	blocks  []*block  // BlockStmt
	block   *block    // ScanStmt, NotStmt, WithStmt
	key     int32     // ScanStmt key local
	fn      int       // CallStmt to a plan function
	builtin topdown.BuiltinFunc
	// relation: the built-in gives any number of values (walk); the plan
	// scans the array of them.
	relation bool
	name     string
	args     []operand // CallStmt, CallDynamicStmt
	path     []operand // CallDynamicStmt
	wpath    []*ast.Term
	loc      string
}

// Compile prepares the plan named entry of p.
func Compile(p *ir.Policy, entry string) (*Program, error) {
	if p == nil || p.Static == nil || p.Plans == nil {
		return nil, fmt.Errorf("plan: %w: empty policy", ErrUnsupported)
	}
	c := compiler{p: p, prog: &Program{byPath: map[string]int{}, subtree: map[string][]leaf{}}, byName: map[string]int{}}
	for _, s := range p.Static.Strings {
		c.strings = append(c.strings, ast.StringTerm(s.Value))
	}
	for _, s := range p.Static.Files {
		c.files = append(c.files, s.Value)
	}
	if p.Funcs != nil {
		for i, f := range p.Funcs.Funcs {
			c.byName[f.Name] = i
			fn := &function{name: f.Name, path: f.Path, ret: int32(f.Return), memo: len(f.Params) == 2}
			for _, l := range f.Params {
				fn.params = append(fn.params, int32(l))
			}
			c.prog.funcs = append(c.prog.funcs, fn)
			if len(f.Path) > 0 {
				c.prog.byPath[strings.Join(f.Path, "\x00")] = i
			}
		}
		for i, f := range p.Funcs.Funcs {
			for n := 1; n < len(f.Path); n++ {
				prefix := strings.Join(f.Path[:n], "\x00")
				if _, ok := c.prog.byPath[prefix]; ok {
					continue
				}
				rel := make([]*ast.Term, 0, len(f.Path)-n)
				for _, k := range f.Path[n:] {
					rel = append(rel, ast.StringTerm(k))
				}
				c.prog.subtree[prefix] = append(c.prog.subtree[prefix], leaf{fn: i, rel: rel})
			}
		}
	}
	for _, pl := range p.Plans.Plans {
		if pl.Name != entry {
			continue
		}
		c.max = int(ir.Data)
		blocks, err := c.blocks(pl.Blocks)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", entry, err)
		}
		c.prog.entry = &function{name: entry, blocks: blocks, nlocals: c.max + 1, reached: true}
		c.prog.stack += c.prog.entry.nlocals
	}
	if c.prog.entry == nil {
		return nil, fmt.Errorf("plan: no plan named %s", entry)
	}
	// Only the functions the entry may call are compiled: a rule the
	// decision never reads may use what planeval does not support.
	todo := c.calls(c.prog.entry.blocks, nil)
	for len(todo) > 0 {
		i := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		fn := c.prog.funcs[i]
		if fn.reached {
			continue
		}
		fn.reached = true
		c.max = int(fn.ret)
		for _, l := range fn.params {
			c.max = max(c.max, int(l))
		}
		blocks, err := c.blocks(p.Funcs.Funcs[i].Blocks)
		if err != nil {
			return nil, fmt.Errorf("plan function %s: %w", fn.name, err)
		}
		fn.blocks, fn.nlocals = blocks, c.max+1
		c.prog.stack += fn.nlocals
		todo = c.calls(fn.blocks, todo)
	}
	return c.prog, nil
}

// calls appends the functions the blocks may call to todo: those named,
// and for a dynamic call every function under its constant prefix.
func (c *compiler) calls(bs []*block, todo []int) []int {
	for _, b := range bs {
		for i := range b.instrs {
			in := &b.instrs[i]
			switch in.op {
			case opCall:
				todo = append(todo, in.fn)
			case opCallDynamic:
				var prefix []string
				for _, o := range in.path {
					if o.konst == nil {
						break
					}
					s, ok := o.konst.Value.(ast.String)
					if !ok {
						break
					}
					prefix = append(prefix, string(s))
				}
				for j, fn := range c.prog.funcs {
					if len(fn.path) >= len(prefix) && slices.Equal(fn.path[:len(prefix)], prefix) {
						todo = append(todo, j)
					}
				}
			}
			if in.block != nil {
				todo = c.calls([]*block{in.block}, todo)
			}
			todo = c.calls(in.blocks, todo)
		}
	}
	return todo
}

type compiler struct {
	p       *ir.Policy
	prog    *Program
	strings []*ast.Term
	files   []string
	byName  map[string]int
	max     int // largest local of the function being compiled
}

func (c *compiler) blocks(bs []*ir.Block) ([]*block, error) { return each(bs, c.block) }

// each is f of every x, or f's first error.
func each[T, U any](xs []T, f func(T) (U, error)) ([]U, error) {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		y, err := f(x)
		if err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, nil
}

func (c *compiler) local(l ir.Local) int32 {
	c.max = max(c.max, int(l))
	return int32(l)
}

func (c *compiler) operand(o ir.Operand) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: c.local(v)}, nil
	case *ir.Local:
		return operand{local: c.local(*v)}, nil
	case ir.StringIndex:
		return c.str(int(v))
	case *ir.StringIndex:
		return c.str(int(*v))
	case ir.Bool:
		return operand{konst: ast.InternedTerm(bool(v))}, nil
	case *ir.Bool:
		return operand{konst: ast.InternedTerm(bool(*v))}, nil
	}
	return operand{}, fmt.Errorf("%w: operand %T", ErrUnsupported, o.Value)
}

func (c *compiler) str(i int) (operand, error) {
	if i < 0 || i >= len(c.strings) {
		return operand{}, fmt.Errorf("string constant %d out of range", i)
	}
	return operand{konst: c.strings[i]}, nil
}

func (c *compiler) operands(os []ir.Operand) ([]operand, error) { return each(os, c.operand) }

func (c *compiler) location(s ir.Stmt) string {
	l := s.GetLocation()
	if l == nil {
		return ""
	}
	file := ""
	if l.File >= 0 && l.File < len(c.files) {
		file = c.files[l.File]
	}
	return fmt.Sprintf("%s:%d", file, l.Row)
}

func (c *compiler) block(b *ir.Block) (*block, error) {
	out := &block{instrs: make([]instr, 0, len(b.Stmts))}
	for _, s := range b.Stmts {
		in, err := c.stmt(s)
		if err != nil {
			return nil, err
		}
		out.instrs = append(out.instrs, in)
	}
	return out, nil
}

//nolint:gocyclo // one case per statement type of the IR
func (c *compiler) stmt(s ir.Stmt) (instr, error) {
	var (
		in  = instr{loc: c.location(s)}
		err error
	)
	two := func(a, b ir.Operand) {
		if err == nil {
			in.a, err = c.operand(a)
		}
		if err == nil {
			in.b, err = c.operand(b)
		}
	}
	switch s := s.(type) {
	case *ir.ResultSetAddStmt:
		in.op, in.a = opResultSetAdd, operand{local: c.local(s.Value)}
	case *ir.ReturnLocalStmt:
		in.op, in.a = opReturn, operand{local: c.local(s.Source)}
	case *ir.BlockStmt:
		in.op = opBlock
		in.blocks, err = c.blocks(s.Blocks)
	case *ir.BreakStmt:
		in.op, in.index = opBreak, int(s.Index)
	case *ir.CallStmt:
		in.target = c.local(s.Result)
		in.args, err = c.operands(s.Args)
		in.name = s.Func
		if i, ok := c.byName[s.Func]; ok {
			in.op, in.fn = opCall, i
			if n := len(c.prog.funcs[i].params); n != len(s.Args) {
				return in, fmt.Errorf("call %s with %d arguments, want %d", s.Func, len(s.Args), n)
			}
			break
		}
		in.op = opCallBuiltin
		in.builtin, err = builtin(s.Func)
		if decl, ok := ast.BuiltinMap[s.Func]; ok {
			in.relation = decl.Relation
		}
	case *ir.CallDynamicStmt:
		in.op, in.target = opCallDynamic, c.local(s.Result)
		for _, a := range s.Args {
			in.args = append(in.args, operand{local: c.local(a)})
		}
		in.path, err = c.operands(s.Path)
	case *ir.WithStmt:
		in.op, in.target = opWith, c.local(s.Local)
		in.a, err = c.operand(s.Value)
		for _, i := range s.Path {
			if i < 0 || i >= len(c.strings) {
				return in, fmt.Errorf("with: string constant %d out of range", i)
			}
			in.wpath = append(in.wpath, c.strings[i])
		}
		if err == nil {
			in.block, err = c.block(s.Block)
		}
	case *ir.AssignVarStmt:
		in.op, in.target = opAssignVar, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.AssignVarOnceStmt:
		in.op, in.target = opAssignVarOnce, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.AssignIntStmt:
		in.op, in.target, in.konst = opAssignInt, c.local(s.Target), ast.IntNumberTerm(int(s.Value))
	case *ir.ScanStmt:
		in.op, in.a, in.key, in.target = opScan, operand{local: c.local(s.Source)}, c.local(s.Key), c.local(s.Value)
		in.block, err = c.block(s.Block)
	case *ir.NopStmt:
		in.op = opNop
	case *ir.NotStmt:
		in.op, in.target = opNot, notFlag(s.Block)
		in.block, err = c.block(s.Block)
	case *ir.DotStmt:
		in.op, in.target = opDot, c.local(s.Target)
		two(s.Source, s.Key)
	case *ir.LenStmt:
		in.op, in.target = opLen, c.local(s.Target)
		in.a, err = c.operand(s.Source)
	case *ir.EqualStmt:
		in.op = opEqual
		two(s.A, s.B)
	case *ir.NotEqualStmt:
		in.op = opNotEqual
		two(s.A, s.B)
	case *ir.MakeNullStmt:
		in.op, in.target, in.konst = opMakeNumber, c.local(s.Target), ast.InternedNullTerm
	case *ir.MakeNumberIntStmt:
		in.op, in.target, in.konst = opMakeNumber, c.local(s.Target), ast.IntNumberTerm(int(s.Value))
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(c.strings) {
			return in, fmt.Errorf("number constant %d out of range", s.Index)
		}
		n := ast.Number(c.strings[s.Index].Value.(ast.String))
		in.op, in.target, in.konst = opMakeNumber, c.local(s.Target), ast.NewTerm(n)
	case *ir.MakeArrayStmt:
		in.op, in.target, in.index = opMakeArray, c.local(s.Target), int(s.Capacity)
	case *ir.MakeObjectStmt:
		in.op, in.target = opMakeObject, c.local(s.Target)
	case *ir.MakeSetStmt:
		in.op, in.target = opMakeSet, c.local(s.Target)
	case *ir.IsArrayStmt:
		in.op = opIsArray
		in.a, err = c.operand(s.Source)
	case *ir.IsObjectStmt:
		in.op = opIsObject
		in.a, err = c.operand(s.Source)
	case *ir.IsSetStmt:
		in.op = opIsSet
		in.a, err = c.operand(s.Source)
	case *ir.IsDefinedStmt:
		in.op, in.a = opIsDefined, operand{local: c.local(s.Source)}
	case *ir.IsUndefinedStmt:
		in.op, in.a = opIsUndefined, operand{local: c.local(s.Source)}
	case *ir.ResetLocalStmt:
		in.op, in.target = opResetLocal, c.local(s.Target)
	case *ir.ArrayAppendStmt:
		in.op, in.target = opArrayAppend, c.local(s.Array)
		in.a, err = c.operand(s.Value)
	case *ir.ObjectInsertStmt:
		in.op, in.target = opObjectInsert, c.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectInsertOnceStmt:
		in.op, in.target = opObjectInsertOnce, c.local(s.Object)
		two(s.Key, s.Value)
	case *ir.ObjectMergeStmt:
		in.op, in.a, in.b, in.target = opObjectMerge, operand{local: c.local(s.A)}, operand{local: c.local(s.B)}, c.local(s.Target)
	case *ir.SetAddStmt:
		in.op, in.target = opSetAdd, c.local(s.Set)
		in.a, err = c.operand(s.Value)
	default:
		return in, fmt.Errorf("%w: statement %T", ErrUnsupported, s)
	}
	return in, err
}

// notFlag is the success flag of a negation planned from a `not` body, or
// -1. OPA's planner plans one as a block that sets a new local to true at
// each point where the body holds and ends with a check that it is
// defined; it does not reset the local, and locals are reused across a
// function's blocks, so a value left there by an earlier rule body would
// count as success. A new local is undefined: it is reset here.
func notFlag(b *ir.Block) int32 {
	n := len(b.Stmts)
	if n == 0 {
		return -1
	}
	last, ok := b.Stmts[n-1].(*ir.IsDefinedStmt)
	if !ok {
		return -1
	}
	flag := last.Source
	only := true
	sets := 0
	var visit func(b *ir.Block)
	visit = func(b *ir.Block) {
		for _, s := range b.Stmts {
			switch s := s.(type) {
			case *ir.AssignVarStmt:
				if s.Target == flag {
					if v, ok := s.Source.Value.(ir.Bool); ok && bool(v) {
						sets++
					} else if v, ok := s.Source.Value.(*ir.Bool); ok && bool(*v) {
						sets++
					} else {
						only = false
					}
				}
			case *ir.BlockStmt:
				for _, x := range s.Blocks {
					visit(x)
				}
			case *ir.ScanStmt:
				only = only && !writes(s, flag)
				visit(s.Block)
			case *ir.NotStmt:
				visit(s.Block)
			case *ir.WithStmt:
				only = only && !writes(s, flag)
				visit(s.Block)
			default:
				if writes(s, flag) {
					only = false
				}
			}
		}
	}
	visit(&ir.Block{Stmts: b.Stmts[:n-1]})
	if !only || sets == 0 {
		return -1
	}
	return int32(flag)
}

// writes reports whether s may write local l (any statement with a
// target or result naming it).
func writes(s ir.Stmt, l ir.Local) bool {
	switch s := s.(type) {
	case *ir.AssignVarOnceStmt:
		return s.Target == l
	case *ir.AssignIntStmt:
		return s.Target == l
	case *ir.CallStmt:
		return s.Result == l
	case *ir.CallDynamicStmt:
		return s.Result == l
	case *ir.DotStmt:
		return s.Target == l
	case *ir.LenStmt:
		return s.Target == l
	case *ir.MakeNullStmt:
		return s.Target == l
	case *ir.MakeNumberIntStmt:
		return s.Target == l
	case *ir.MakeNumberRefStmt:
		return s.Target == l
	case *ir.MakeArrayStmt:
		return s.Target == l
	case *ir.MakeObjectStmt:
		return s.Target == l
	case *ir.MakeSetStmt:
		return s.Target == l
	case *ir.ObjectMergeStmt:
		return s.Target == l
	case *ir.ResetLocalStmt:
		return s.Target == l
	case *ir.ArrayAppendStmt:
		return s.Array == l
	case *ir.ObjectInsertStmt:
		return s.Object == l
	case *ir.ObjectInsertOnceStmt:
		return s.Object == l
	case *ir.SetAddStmt:
		return s.Set == l
	case *ir.ScanStmt:
		return s.Key == l || s.Value == l
	case *ir.WithStmt:
		return s.Local == l
	}
	return false
}

// builtin is OPA's implementation of a built-in function the plan calls.
// Non-deterministic built-ins, and those that need the evaluation's context
// (time, randomness, printing, tracing, HTTP), are not supported: their
// values would differ from topdown's, or need what only topdown sets up.
func builtin(name string) (topdown.BuiltinFunc, error) {
	decl, ok := ast.BuiltinMap[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown built-in %s", ErrUnsupported, name)
	}
	if decl.Nondeterministic {
		return nil, fmt.Errorf("%w: non-deterministic built-in %s", ErrUnsupported, name)
	}
	switch {
	case name == "print" || name == "internal.print" || name == "trace" || name == "opa.runtime",
		strings.HasPrefix(name, "rego."), strings.HasPrefix(name, "time."), strings.HasPrefix(name, "http."),
		strings.HasPrefix(name, "io.jwt."), strings.HasPrefix(name, "net."), strings.HasPrefix(name, "crypto.x509."):
		return nil, fmt.Errorf("%w: built-in %s", ErrUnsupported, name)
	}
	f := topdown.GetBuiltin(name)
	if f == nil {
		return nil, fmt.Errorf("%w: built-in %s has no implementation", ErrUnsupported, name)
	}
	return f, nil
}

// Func is the function a rule path compiles to (["g0", "dgw", "decision"]
// for data.dgw.decision), if the plan has one.
func (p *Program) Func(path ...string) (int, bool) {
	i, ok := p.byPath[strings.Join(path, "\x00")]
	return i, ok
}

// Funcs is the number of functions of the plan; function ids are below it.
func (p *Program) Funcs() int { return len(p.funcs) }

// FuncPath is the rule path of function fn (nil for one that implements a
// Rego function or a part of a rule).
func (p *Program) FuncPath(fn int) []string { return p.funcs[fn].path }

// Memoised reports whether fn's value is one per evaluation (a document:
// its only parameters are input and data), which Options.Known may supply.
func (p *Program) Memoised(fn int) bool { return p.funcs[fn].memo }

// Undefined is the value Known gives for a document known to be undefined.
var Undefined = &ast.Term{Value: ast.Null{}}

// Options adjusts one evaluation.
type Options struct {
	// Known, when set, is asked for the value of a memoised function (a
	// document) before it is computed, outside any `with`; a non-nil result
	// is its value (Undefined: undefined).
	Known func(fn int) *ast.Term
	// Computed, when set, is told the value of every memoised function the
	// evaluation computed outside any `with` (Undefined: undefined), once
	// the evaluation has succeeded.
	Computed func(fn int, v *ast.Term)
}

// Eval evaluates the plan with input (nil: undefined) and data, and
// returns the values of its result set: an entry plan's one result is an
// object {"result": value}.
func (p *Program) Eval(ctx context.Context, input, data *ast.Term, opts Options) (_ []*ast.Term, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, _ := p.pool.Get().(*state)
	if st == nil {
		st = &state{p: p, stack: make([]*ast.Term, p.stack), memo: make([]*ast.Term, len(p.funcs))}
	}
	// A panic (a built-in's, or this package's) is an error of this
	// evaluation: the caller answers with OPA's interpreter. The state is
	// not reused.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the evaluation panicked: %v", ErrUnsupported, r)
		}
	}()
	st.ctx, st.opts = ctx, opts
	st.bctx = topdown.BuiltinContext{Context: ctx, Cache: builtins.Cache{}}
	frame := st.stack[:p.entry.nlocals]
	st.top = p.entry.nlocals
	frame[ir.Input], frame[ir.Data] = input, data
	r, err := st.blocks(p.entry, frame, p.entry.blocks)
	if err == nil && r > 0 && r != brkReturn {
		err = fmt.Errorf("plan %s: break out of the plan", p.entry.name)
	}
	out := st.result
	if err == nil && opts.Computed != nil {
		for fn, v := range st.memo {
			if v != nil && st.computed != nil && st.computed[fn] {
				opts.Computed(fn, v)
			}
		}
	}
	st.reset()
	p.pool.Put(st)
	if err != nil {
		return nil, err
	}
	return out, nil
}

const (
	brkDone   = -1      // the block ran to its end
	brkReturn = 1 << 30 // a ReturnLocalStmt
)

type state struct {
	p        *Program
	ctx      context.Context
	opts     Options
	bctx     topdown.BuiltinContext
	stack    []*ast.Term // locals of the call chain
	top      int
	memo     []*ast.Term // outside `with`: by function
	computed []bool      // memo entries this evaluation computed (not Known)
	withs    [][]*ast.Term
	result   []*ast.Term
	args     []*ast.Term
	key      []byte
	subtrees map[string]*ast.Term
}

func (st *state) reset() {
	clear(st.stack)
	clear(st.memo)
	clear(st.computed)
	st.withs, st.result, st.subtrees = st.withs[:0], nil, nil
	clear(st.args)
	st.args = st.args[:0]
	st.ctx, st.opts, st.bctx = nil, Options{}, topdown.BuiltinContext{}
}

func (st *state) memoFrame() []*ast.Term {
	if n := len(st.withs); n > 0 {
		return st.withs[n-1]
	}
	return st.memo
}

// call evaluates function fi with args.
func (st *state) call(fi int, args []*ast.Term) (*ast.Term, error) {
	fn := st.p.funcs[fi]
	if !fn.reached {
		return nil, fmt.Errorf("%w: call of %s, which the plan's entry does not reach", ErrUnsupported, fn.name)
	}
	var memo []*ast.Term
	if fn.memo {
		memo = st.memoFrame()
		if v := memo[fi]; v != nil {
			return defined(v), nil
		}
		if len(st.withs) == 0 && st.opts.Known != nil {
			if v := st.opts.Known(fi); v != nil {
				memo[fi] = v
				return defined(v), nil
			}
		}
	}
	if err := st.ctx.Err(); err != nil {
		return nil, err
	}
	if st.top+fn.nlocals > len(st.stack) {
		return nil, fmt.Errorf("%w: call chain deeper than the plan's functions (recursion)", ErrUnsupported)
	}
	base := st.top
	st.top += fn.nlocals
	frame := st.stack[base:st.top]
	for i, l := range fn.params {
		frame[l] = args[i]
	}
	r, err := st.blocks(fn, frame, fn.blocks)
	v := frame[fn.ret]
	clear(frame)
	st.top = base
	if err != nil {
		return nil, err
	}
	if r > 0 && r != brkReturn {
		return nil, fmt.Errorf("plan function %s: break out of the function", fn.name)
	}
	if fn.memo {
		if v == nil {
			memo[fi] = Undefined
		} else {
			memo[fi] = v
		}
		if len(st.withs) == 0 {
			if st.computed == nil {
				st.computed = make([]bool, len(st.p.funcs))
			}
			st.computed[fi] = true
		}
	}
	return v, nil
}

func defined(v *ast.Term) *ast.Term {
	if v == Undefined {
		return nil
	}
	return v
}

// blocks runs a function's or plan's blocks in order, as a BlockStmt.
func (st *state) blocks(fn *function, frame []*ast.Term, bs []*block) (int, error) {
	for _, b := range bs {
		r, err := st.run(fn, frame, b)
		if err != nil || r == brkReturn {
			return r, err
		}
		if r > 0 {
			return r - 1, nil
		}
	}
	return brkDone, nil
}

func (st *state) get(frame []*ast.Term, o operand) *ast.Term {
	if o.konst != nil {
		return o.konst
	}
	return frame[o.local]
}

// run runs b: brkDone when it ran to its end, brkReturn after a return,
// else the number of blocks further out that a break leaves (0: b only).
//
//nolint:gocyclo // one case per statement type of the IR
func (st *state) run(fn *function, frame []*ast.Term, b *block) (int, error) {
	for i := range b.instrs {
		in := &b.instrs[i]
		switch in.op {
		case opResultSetAdd:
			st.result = append(st.result, frame[in.a.local])
		case opReturn:
			return brkReturn, nil
		case opBlock:
			r, err := st.blocks(fn, frame, in.blocks)
			if err != nil || r == brkReturn {
				return r, err
			}
			if r >= 0 {
				return r, nil
			}
		case opBreak:
			return in.index, nil
		case opCall, opCallBuiltin:
			v, err := st.callOf(frame, in)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			frame[in.target] = v
		case opCallDynamic:
			r, err := st.callDynamic(frame, in)
			if err != nil || r != brkDone {
				return r, err
			}
		case opWith:
			r, err := st.with(fn, frame, in)
			if err != nil || r != brkDone {
				return r, err
			}
		case opAssignVar:
			frame[in.target] = st.get(frame, in.a)
		case opAssignVarOnce:
			v := st.get(frame, in.a)
			if cur := frame[in.target]; cur != nil && !cur.Equal(v) {
				return 0, &ConflictError{Func: fn.name, Location: in.loc}
			}
			frame[in.target] = v
		case opAssignInt:
			frame[in.target] = in.konst
		case opScan:
			r, err := st.scan(fn, frame, in)
			if err != nil || r != brkDone {
				return r, err
			}
		case opNop:
		case opNot:
			if in.target >= 0 {
				frame[in.target] = nil
			}
			r, err := st.run(fn, frame, in.block)
			if err != nil || r == brkReturn {
				return r, err
			}
			if r == brkDone {
				return 0, nil // the negated block held
			}
			if r > 0 {
				return r - 1, nil
			}
		case opDot:
			src, key := st.get(frame, in.a), st.get(frame, in.b)
			v := dot(src, key)
			if v == nil {
				if numberKeyAsString(src, key) {
					// OPA's interpreter finds data["2"] as data[2] in the
					// data documents, not in objects rules build; the plan
					// cannot tell them apart.
					return 0, fmt.Errorf("%w: a number key that is present as a string (%s)", ErrUnsupported, in.loc)
				}
				return 0, nil
			}
			frame[in.target] = v
		case opLen:
			n, ok := length(st.get(frame, in.a))
			if !ok {
				return 0, nil
			}
			frame[in.target] = ast.InternedTerm(n)
		case opEqual:
			a, b := st.get(frame, in.a), st.get(frame, in.b)
			if a == nil || b == nil || !a.Equal(b) {
				return 0, nil
			}
		case opNotEqual:
			a, b := st.get(frame, in.a), st.get(frame, in.b)
			if a == nil || b == nil || a.Equal(b) {
				return 0, nil
			}
		case opMakeNumber:
			frame[in.target] = in.konst
		case opMakeArray:
			frame[in.target] = ast.NewTerm(ast.NewArrayWithCapacity(in.index))
		case opMakeObject:
			frame[in.target] = ast.NewTerm(ast.NewObject())
		case opMakeSet:
			frame[in.target] = ast.NewTerm(ast.NewSet())
		case opIsArray:
			if v := st.get(frame, in.a); v == nil || !isArray(v) {
				return 0, nil
			}
		case opIsObject:
			if v := st.get(frame, in.a); v == nil || !isObject(v) {
				return 0, nil
			}
		case opIsSet:
			if v := st.get(frame, in.a); v == nil || !isSet(v) {
				return 0, nil
			}
		case opIsDefined:
			if frame[in.a.local] == nil {
				return 0, nil
			}
		case opIsUndefined:
			if frame[in.a.local] != nil {
				return 0, nil
			}
		case opResetLocal:
			frame[in.target] = nil
		case opArrayAppend:
			arr, ok := frame[in.target].Value.(*ast.Array)
			v := st.get(frame, in.a)
			if !ok || v == nil {
				return 0, fmt.Errorf("plan function %s at %s: append to a non-array or of an undefined value", fn.name, in.loc)
			}
			frame[in.target] = ast.NewTerm(arr.Append(v))
		case opObjectInsert:
			obj, ok := frame[in.target].Value.(ast.Object)
			k, v := st.get(frame, in.a), st.get(frame, in.b)
			if !ok || k == nil || v == nil {
				return 0, fmt.Errorf("plan function %s at %s: insert into a non-object or of an undefined value", fn.name, in.loc)
			}
			obj.Insert(k, v)
		case opObjectInsertOnce:
			obj, ok := frame[in.target].Value.(ast.Object)
			k, v := st.get(frame, in.a), st.get(frame, in.b)
			if !ok || k == nil || v == nil {
				return 0, fmt.Errorf("plan function %s at %s: insert into a non-object or of an undefined value", fn.name, in.loc)
			}
			if cur := obj.Get(k); cur != nil {
				if !cur.Equal(v) {
					return 0, &ConflictError{Func: fn.name, Location: in.loc}
				}
				break
			}
			obj.Insert(k, v)
		case opObjectMerge:
			a, aok := frame[in.a.local].Value.(ast.Object)
			b, bok := frame[in.b.local].Value.(ast.Object)
			if !aok || !bok {
				return 0, &ConflictError{Func: fn.name, Location: in.loc}
			}
			m, ok := a.Merge(b)
			if !ok {
				return 0, &ConflictError{Func: fn.name, Location: in.loc}
			}
			frame[in.target] = ast.NewTerm(m)
		case opSetAdd:
			set, ok := frame[in.target].Value.(ast.Set)
			v := st.get(frame, in.a)
			if !ok || v == nil {
				return 0, fmt.Errorf("plan function %s at %s: add to a non-set or of an undefined value", fn.name, in.loc)
			}
			set.Add(v)
		default:
			return 0, fmt.Errorf("%w: opcode %d", ErrUnsupported, in.op)
		}
	}
	return brkDone, nil
}

// callOf is the value of a CallStmt: a plan function's or a built-in's.
func (st *state) callOf(frame []*ast.Term, in *instr) (*ast.Term, error) {
	if in.op == opCallBuiltin {
		return st.builtin(frame, in)
	}
	args := st.pushArgs(frame, in.args)
	defer st.popArgs(len(in.args))
	return st.call(in.fn, args)
}

func isArray(t *ast.Term) bool  { _, ok := t.Value.(*ast.Array); return ok }
func isObject(t *ast.Term) bool { _, ok := t.Value.(ast.Object); return ok }
func isSet(t *ast.Term) bool    { _, ok := t.Value.(ast.Set); return ok }

// pushArgs puts a call's arguments on the argument stack.
func (st *state) pushArgs(frame []*ast.Term, os []operand) []*ast.Term {
	n := len(st.args)
	for _, o := range os {
		st.args = append(st.args, st.get(frame, o))
	}
	return st.args[n:]
}

func (st *state) popArgs(n int) {
	m := len(st.args) - n
	clear(st.args[m:])
	st.args = st.args[:m]
}

// builtin calls OPA's implementation as topdown does without strict
// built-in errors: an error makes the call undefined, unless it halts.
func (st *state) builtin(frame []*ast.Term, in *instr) (*ast.Term, error) {
	args := st.pushArgs(frame, in.args)
	defer st.popArgs(len(in.args))
	for _, a := range args {
		if a == nil {
			return nil, nil
		}
	}
	var (
		out *ast.Term
		all []*ast.Term // a relation's values
		n   int
	)
	err := in.builtin(st.bctx, args, func(t *ast.Term) error {
		out = t
		if in.relation {
			all = append(all, t)
		}
		n++
		return nil
	})
	if err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, halt.Err
		}
		return nil, nil
	}
	if in.relation {
		return ast.ArrayTerm(all...), nil
	}
	if n > 1 {
		return nil, fmt.Errorf("%w: built-in %s gave %d values", ErrUnsupported, in.name, n)
	}
	return out, nil
}

// callDynamic looks up the function of a path computed at run time. As in
// OPA's Wasm runtime: no function, the statement is undefined (the plan
// reads the data document next); a function whose value is undefined
// leaves three blocks (the planner's layout around the statement).
func (st *state) callDynamic(frame []*ast.Term, in *instr) (int, error) {
	st.key = st.key[:0]
	for i, o := range in.path {
		t := st.get(frame, o)
		if t == nil {
			return 0, nil
		}
		s, ok := t.Value.(ast.String)
		if !ok {
			return 0, nil
		}
		if i > 0 {
			st.key = append(st.key, 0)
		}
		st.key = append(st.key, s...)
	}
	args := st.pushArgs(frame, in.args)
	defer st.popArgs(len(in.args))
	if fi, ok := st.p.byPath[string(st.key)]; ok {
		v, err := st.call(fi, args)
		if err != nil {
			return 0, err
		}
		if v == nil {
			return 3, nil
		}
		frame[in.target] = v
		return brkDone, nil
	}
	leaves, ok := st.p.subtree[string(st.key)]
	if !ok {
		return 0, nil
	}
	// Rules deeper than the dispatch: their document is the object of
	// their values. The data document must not have that path too (topdown
	// would merge it; the plan would not).
	base := frame[ir.Data]
	for _, k := range in.path[1:] {
		if base == nil {
			break
		}
		base = dot(base, st.get(frame, k))
	}
	if base != nil {
		return 0, fmt.Errorf("%w: rules and data documents under one path", ErrUnsupported)
	}
	v, err := st.subtreeValue(string(st.key), leaves, args)
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 3, nil
	}
	frame[in.target] = v
	return brkDone, nil
}

func (st *state) subtreeValue(key string, leaves []leaf, args []*ast.Term) (*ast.Term, error) {
	if len(st.withs) == 0 {
		if v, ok := st.subtrees[key]; ok {
			return defined(v), nil
		}
	}
	obj := ast.NewObject()
	for _, lf := range leaves {
		v, err := st.call(lf.fn, args)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		cur := obj
		for i, k := range lf.rel {
			if i == len(lf.rel)-1 {
				if old := cur.Get(k); old != nil && !old.Equal(v) {
					return nil, &ConflictError{Func: st.p.funcs[lf.fn].name, Location: "subtree " + strings.ReplaceAll(key, "\x00", ".")}
				}
				cur.Insert(k, v)
				break
			}
			next := cur.Get(k)
			if next == nil {
				next = ast.NewTerm(ast.NewObject())
				cur.Insert(k, next)
			}
			o, ok := next.Value.(ast.Object)
			if !ok {
				return nil, &ConflictError{Func: st.p.funcs[lf.fn].name, Location: "subtree " + strings.ReplaceAll(key, "\x00", ".")}
			}
			cur = o
		}
	}
	var v *ast.Term
	if obj.Len() > 0 {
		v = ast.NewTerm(obj)
	}
	if len(st.withs) == 0 {
		if st.subtrees == nil {
			st.subtrees = map[string]*ast.Term{}
		}
		if v == nil {
			st.subtrees[key] = Undefined
		} else {
			st.subtrees[key] = v
		}
	}
	return v, nil
}

// with replaces a local (or a path in it) for its block, with a memo of its
// own: documents computed under `with` are not those of the evaluation.
func (st *state) with(fn *function, frame []*ast.Term, in *instr) (int, error) {
	saved := frame[in.target]
	v := st.get(frame, in.a)
	if v == nil && len(in.wpath) > 0 {
		return 0, fmt.Errorf("%w: with an undefined value at a path (%s)", ErrUnsupported, in.loc)
	}
	// An undefined value without a path is the planner restoring an
	// undefined input inside another `with`: the local is undefined.
	if len(in.wpath) == 0 {
		frame[in.target] = v
	} else {
		frame[in.target] = upsert(saved, in.wpath, v)
	}
	st.withs = append(st.withs, make([]*ast.Term, len(st.p.funcs)))
	savedSub := st.subtrees
	r, err := st.run(fn, frame, in.block)
	st.withs = st.withs[:len(st.withs)-1]
	st.subtrees = savedSub
	frame[in.target] = saved
	if err != nil || r == brkReturn {
		return r, err
	}
	if r == brkDone {
		return brkDone, nil
	}
	if r > 0 {
		return r - 1, nil
	}
	return 0, nil
}

// upsert is base (nil, or not an object: an empty object) with v at path,
// copying the objects on the way.
func upsert(base *ast.Term, path []*ast.Term, v *ast.Term) *ast.Term {
	var obj ast.Object
	if base != nil {
		if o, ok := base.Value.(ast.Object); ok {
			obj = o.Copy()
		}
	}
	if obj == nil {
		obj = ast.NewObject()
	}
	if len(path) == 1 {
		obj.Insert(path[0], v)
		return ast.NewTerm(obj)
	}
	obj.Insert(path[0], upsert(obj.Get(path[0]), path[1:], v))
	return ast.NewTerm(obj)
}

// scan runs the block for every key and value of a collection; a scalar
// has none.
func (st *state) scan(fn *function, frame []*ast.Term, in *instr) (int, error) {
	src := frame[in.a.local]
	if src == nil {
		return brkDone, nil
	}
	var (
		r   = brkDone
		err error
	)
	// As in OPA's Wasm compiler, the scanned block is two blocks deep: a
	// break of 0 goes on to the next element, of 1 ends the scan.
	each := func(k, v *ast.Term) bool {
		frame[in.key], frame[in.target] = k, v
		r, err = st.run(fn, frame, in.block)
		if err != nil || r == brkReturn || r > 0 {
			return true
		}
		r = brkDone
		return false
	}
	switch x := src.Value.(type) {
	case ast.Object:
		x.Until(func(k, v *ast.Term) bool { return each(k, v) })
	case *ast.Array:
		for i := range x.Len() {
			if each(ast.InternedTerm(i), x.Elem(i)) {
				break
			}
		}
	case ast.Set:
		x.Until(func(e *ast.Term) bool { return each(e, e) })
	}
	if err != nil || r == brkReturn {
		return r, err
	}
	if r > 1 {
		return r - 2, nil
	}
	return brkDone, nil
}

// numberKeyAsString reports whether key is a number and src an object
// with its text as a key.
func numberKeyAsString(src, key *ast.Term) bool {
	if src == nil || key == nil {
		return false
	}
	n, ok := key.Value.(ast.Number)
	obj, isObj := src.Value.(ast.Object)
	return ok && isObj && obj.Get(ast.StringTerm(string(n))) != nil
}

func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch x := src.Value.(type) {
	case ast.Object:
		return x.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= x.Len() {
			return nil
		}
		return x.Elem(i)
	case ast.Set:
		if x.Contains(key) {
			return key
		}
	}
	return nil
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch x := t.Value.(type) {
	case ast.Object:
		return x.Len(), true
	case *ast.Array:
		return x.Len(), true
	case ast.Set:
		return x.Len(), true
	case ast.String:
		return len([]rune(string(x))), true
	}
	return 0, false
}
