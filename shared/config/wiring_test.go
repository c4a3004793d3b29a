package config_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// runtimeVariables are set by the Lambda runtime, not by the template.
var runtimeVariables = map[string]bool{"AWS_LAMBDA_FUNCTION_NAME": true}

// readVariables finds every variable this package reads: the first
// argument of each Reader method call that is a string literal.
func readVariables(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Required", "String", "Int", "Duration", "URL", "Level", "Bool":
			default:
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				if name == strings.ToUpper(name) && strings.Contains(name, "_") {
					seen[name] = true
				}
			}
			return true
		})
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 10 {
		t.Fatalf("found only %d variables: %v", len(names), names)
	}
	return names
}

// templateVariables returns every environment variable template.yaml sets,
// in Globals or in any function.
func templateVariables(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	add := func(env any) {
		m, _ := env.(map[string]any)
		v, _ := m["Variables"].(map[string]any)
		for k := range v {
			vars[k] = true
		}
	}
	add(doc["Globals"].(map[string]any)["Function"].(map[string]any)["Environment"])
	for _, r := range doc["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == "AWS::Serverless::Function" {
			add(res["Properties"].(map[string]any)["Environment"])
		}
	}
	return vars
}

// TestVariables_WiredAndDocumented checks that every variable a function
// reads is set by template.yaml and documented in the README.
func TestVariables_WiredAndDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := templateVariables(t)
	for _, name := range readVariables(t) {
		if !runtimeVariables[name] && !tmpl[name] {
			t.Errorf("%s is read but template.yaml does not set it", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("%s is read but the README does not document it", name)
		}
	}
}
