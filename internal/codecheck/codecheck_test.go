package codecheck_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/messages-io/messages/internal/codecheck"
)

// root is the module's directory, from this package's.
const root = "../.."

// parseTree parses every Go file of the module, except those under skip,
// and calls fn with each.
func parseTree(t *testing.T, skip []string, fn func(path string, fset *token.FileSet, f *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			for _, s := range skip {
				if rel == s {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		fn(filepath.ToSlash(rel), fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read %d Go files under %s; is the root wrong?", files, root)
	}
}

// lines is how many lines n spans.
func lines(fset *token.FileSet, n ast.Node) int {
	return fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
}

func TestNoLongFunctions(t *testing.T) {
	longest := 0
	parseTree(t, []string{"cmd/bench"}, func(path string, fset *token.FileSet, f *ast.File) {
		if strings.HasSuffix(path, "_test.go") {
			return
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := lines(fset, fd)
			longest = max(longest, n)
			if n > codecheck.MaxFuncLines {
				t.Errorf("%s:%d: %s is %d lines, more than %d", path, fset.Position(fd.Pos()).Line, fd.Name.Name, n, codecheck.MaxFuncLines)
			}
		}
	})
	if longest == 0 {
		t.Error("found no function")
	}
}

// TestLongFunctionsAreFound holds the check above to finding what it looks
// for.
func TestLongFunctionsAreFound(t *testing.T) {
	src := "package p\n\nfunc long() {\n" + strings.Repeat("\t_ = 1\n", codecheck.MaxFuncLines-1) + "}\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := lines(fset, f.Decls[0]); n != codecheck.MaxFuncLines+1 {
		t.Errorf("a function of %d lines counted as %d", codecheck.MaxFuncLines+1, n)
	}
}

// failNow are the methods of testing.TB that end the test: they must run in
// the test's own goroutine.
var failNow = map[string]bool{"Fatal": true, "Fatalf": true, "FailNow": true, "Skip": true, "Skipf": true, "SkipNow": true}

func TestNoFailNowFromGoroutines(t *testing.T) {
	parseTree(t, nil, func(path string, fset *token.FileSet, f *ast.File) {
		if !strings.HasSuffix(path, "_test.go") {
			return
		}
		for _, pos := range failsInGoroutines(f) {
			t.Errorf("%s:%d: a goroutine the test started ends the test", path, fset.Position(pos).Line)
		}
	})
}

func TestFailNowFromGoroutinesIsFound(t *testing.T) {
	src := `package p

import "testing"

func TestX(t *testing.T) {
	go func() { t.Fatal("no") }()
	var wg sync.WaitGroup
	wg.Go(func() { t.FailNow() })
	go func() { t.Error("fine") }()
	t.Fatal("fine too")
}
`
	f, err := parser.ParseFile(token.NewFileSet(), "p_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(failsInGoroutines(f)); got != 2 {
		t.Errorf("found %d calls that end the test from a goroutine, want 2", got)
	}
}

// failsInGoroutines returns where a function of f that takes a *testing.T,
// *testing.B or testing.TB ends the test from a function literal it starts
// as a goroutine, with go or a WaitGroup's Go.
func failsInGoroutines(f *ast.File) []token.Pos {
	var found []token.Pos
	ast.Inspect(f, func(n ast.Node) bool {
		var ft *ast.FuncType
		var body *ast.BlockStmt
		switch n := n.(type) {
		case *ast.FuncDecl:
			ft, body = n.Type, n.Body
		case *ast.FuncLit:
			ft, body = n.Type, n.Body
		}
		if body == nil {
			return true
		}
		names := testingParams(ft)
		if len(names) == 0 {
			return true
		}
		ast.Inspect(body, func(m ast.Node) bool {
			if lit := startedLiteral(m); lit != nil {
				found = append(found, failNowCalls(lit.Body, names)...)
			}
			return true
		})
		return true
	})
	return dedupe(found)
}

// testingParams are the names of ft's parameters of the testing types.
func testingParams(ft *ast.FuncType) map[string]bool {
	names := map[string]bool{}
	for _, p := range ft.Params.List {
		typ := p.Type
		if s, ok := typ.(*ast.StarExpr); ok {
			typ = s.X
		}
		sel, ok := typ.(*ast.SelectorExpr)
		if !ok {
			continue
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "testing" || !map[string]bool{"T": true, "B": true, "TB": true}[sel.Sel.Name] {
			continue
		}
		for _, n := range p.Names {
			names[n.Name] = true
		}
	}
	return names
}

// startedLiteral returns the function literal n starts as a goroutine.
func startedLiteral(n ast.Node) *ast.FuncLit {
	switch n := n.(type) {
	case *ast.GoStmt:
		lit, _ := n.Call.Fun.(*ast.FuncLit)
		return lit
	case *ast.CallExpr:
		if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Go" && len(n.Args) == 1 {
			lit, _ := n.Args[0].(*ast.FuncLit)
			return lit
		}
	}
	return nil
}

// failNowCalls returns the calls in body that end the test named by one of
// names.
func failNowCalls(body *ast.BlockStmt, names map[string]bool) []token.Pos {
	var found []token.Pos
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !failNow[sel.Sel.Name] {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && names[id.Name] {
			found = append(found, call.Pos())
		}
		return true
	})
	return found
}

func dedupe(ps []token.Pos) []token.Pos {
	seen := map[token.Pos]bool{}
	var out []token.Pos
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
